"""Idempotent launches of Dagster runs: a retried admin request never starts a second run for the same
work.

- With an `Idempotency-Key` header, the run is tagged with a digest of the key (and the admin token's
  fingerprint, so two admins' keys never meet). A request with a key that already names a run gets
  that run (whatever its status); the same key with other parameters is refused (422).
- Without a key, identical work (job, run config and tags) that is still queued or running is the
  run a retry gets.
- Looking for an existing run and creating a new one happen under a lock per request, held across
  workers and hosts through a PostgreSQL advisory lock when the catalog is PostgreSQL (in-process
  otherwise), so two retries racing each other cannot both launch.
- A launch can keep Dagster busy for many seconds (a cleanup over 1,280 partitions: 16-24 s). The
  launch call runs in a thread while the run is looked up by a tag unique to this attempt: the answer
  is given as soon as the run exists. If the launch call itself fails or times out, the run is looked
  for again before the API answers 503, so a run that was created is never reported as not launched.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from serving.dagster_client import DagsterClient, DagsterUnavailable, LaunchedRun

IDEMPOTENCY_TAG = "tvdb_images/idempotency_key"
REQUEST_TAG = "tvdb_images/request"
ATTEMPT_TAG = "tvdb_images/launch_attempt"
# Dagster run statuses of work that is not finished: a retry without a key joins such a run.
PENDING_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED")
_STRIPES = 64


class IdempotencyKeyReused(ValueError):
    """The key already names a run of other work."""


class LaunchInProgress(RuntimeError):
    """Another request for the same work holds the launch lock past the wait."""


@dataclass(frozen=True)
class Launch:
    run: LaunchedRun
    replayed: bool  # an existing run, not a new one


def request_digest(job: str, run_config: Mapping[str, Any], tags: Mapping[str, str]) -> str:
    """What the work is: the same job, config and tags give the same digest."""
    document = json.dumps({"job": job, "config": run_config, "tags": tags}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def key_digest(admin: str, key: str) -> str:
    return hashlib.sha256(f"{admin}\n{key}".encode()).hexdigest()[:32]


@dataclass
class Launcher:
    dagster: DagsterClient
    # The catalog's engine; on PostgreSQL its advisory locks make the lookup-then-launch atomic
    # across workers.
    engine: Engine | None = None
    poll_seconds: float = 0.5
    # After a launch call failed or timed out, how long to keep looking for the run: Dagster goes on
    # with a launch its caller stopped waiting for.
    settle_seconds: float = 60.0
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="launch")
    )
    _stripes: list[threading.Lock] = field(
        default_factory=lambda: [threading.Lock() for _ in range(_STRIPES)]
    )

    def launch(
        self,
        job: str,
        run_config: Mapping[str, Any],
        tags: Mapping[str, str],
        *,
        idempotency_key: str | None,
    ) -> Launch:
        work = request_digest(job, run_config, tags)
        lookup = {IDEMPOTENCY_TAG: idempotency_key} if idempotency_key else {REQUEST_TAG: work}
        statuses = () if idempotency_key else PENDING_STATUSES
        with self._exclusive(json.dumps(lookup, sort_keys=True)):
            existing = self.dagster.find_run(lookup, statuses)
            if existing is not None:
                if existing.tags.get(REQUEST_TAG) != work:
                    raise IdempotencyKeyReused(existing.run_id)
                return Launch(existing, replayed=True)
            attempt = uuid.uuid4().hex
            run_tags = {**tags, **lookup, REQUEST_TAG: work, ATTEMPT_TAG: attempt}
            return Launch(self._launch_and_wait(job, run_config, run_tags, attempt), replayed=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _launch_and_wait(
        self, job: str, run_config: Mapping[str, Any], tags: Mapping[str, str], attempt: str
    ) -> LaunchedRun:
        call: Future[LaunchedRun] = self._pool.submit(self.dagster.launch_run, job, run_config, tags)
        while True:
            try:
                return call.result(timeout=self.poll_seconds)
            except TimeoutError:
                pass
            except DagsterUnavailable:
                found = self._settle(attempt)
                if found is None:
                    raise
                return found
            created = self._find_quietly(attempt)
            if created is not None:
                return created  # the launch call finishes in its thread; its answer is not needed

    def _settle(self, attempt: str) -> LaunchedRun | None:
        deadline = time.monotonic() + self.settle_seconds
        while True:
            found = self._find_quietly(attempt)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(self.poll_seconds)

    def _find_quietly(self, attempt: str) -> LaunchedRun | None:
        try:
            return self.dagster.find_run({ATTEMPT_TAG: attempt})
        except DagsterUnavailable:
            return None

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        digest = hashlib.sha256(name.encode()).digest()
        wait = self.dagster.launch_timeout + self.settle_seconds
        stripe = self._stripes[digest[0] % _STRIPES]
        if not stripe.acquire(timeout=wait):
            raise LaunchInProgress(name)
        try:
            if self.engine is None or self.engine.dialect.name != "postgresql":
                yield
                return
            key = int.from_bytes(digest[:8], "big", signed=True)
            with self.engine.connect() as connection:
                deadline = time.monotonic() + wait
                while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                    if time.monotonic() >= deadline:
                        raise LaunchInProgress(name)
                    time.sleep(0.2)
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
        finally:
            stripe.release()
