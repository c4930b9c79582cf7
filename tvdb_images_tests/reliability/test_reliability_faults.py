"""Faults injected into real services in the middle of a sync, then a rerun that must converge.

Three faults, each on its own infrastructure so that nothing else is disturbed:

* SeaweedFS stopped mid-render (a SeaweedFS instance of this test's own), started again later;
* PostgreSQL restarted mid-render (a private cluster the test creates with initdb on a free port;
  the machine's server is never touched);
* the process running a `sync_images` Dagster run killed with SIGKILL mid-partition.

After the fault and one ordinary rerun, the same checks hold every time: every artwork ended
processed, or failed with a cause; every key the catalog references exists with the recorded size;
orphan cleanup (grace 0) removes exactly the objects nothing references; and nothing that was done
before the fault was done again (sources recorded as stored are not fetched a second time, recorded
renditions are not rewritten).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, ObjectStore, StorageError
from tvdb_images.storage.layout import SIZES, partition_prefix, shard_of
from tvdb_images.storage.s3 import S3ObjectStore
from tvdb_images_tests.support import services
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.origins import LoopbackOrigin, respond
from tvdb_images_tests.support.private_postgres import PrivatePostgres
from tvdb_images_tests.support.processes import ManagedProcess
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import import_items, one_partition_items, run_sync_images
from tvdb_images_tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

IMAGES = [
    "tvdb/fanart_c.jpg",
    "tvdb/poster_a.jpg",
    "tvdb/episode_a.jpg",
    "tvdb/banner_a.jpg",
    "tvdb/person_b.jpg",
    "tvdb/poster_progressive.jpg",
    "tvdb/episode_b.jpg",
    "tvdb/fanart_a.jpg",
]
ARTWORKS = 24
DATABASE_DOWN_SECONDS = 2.0
STOP_SECONDS = 5.0  # SIGTERM, then SIGKILL if SeaweedFS is still up
CONTENT_TYPE = "series"


@dataclass
class Scenario:
    """One partition of artwork served from a loopback origin, one URL (and origin path) per artwork."""

    origin: LoopbackOrigin
    catalog: Catalog
    store: ObjectStore
    shard: str = ""
    paths: dict[int, str] = field(default_factory=dict)  # artwork id -> origin path

    @property
    def partition(self) -> tuple[str, str]:
        return (CONTENT_TYPE, self.shard)

    def load(self, corpus: Path) -> None:
        paths = []
        for index in range(ARTWORKS):
            name = IMAGES[index % len(IMAGES)]
            path = f"/img/{index}{Path(name).suffix}"
            self.origin.route(
                path, respond(200, (corpus / name).read_bytes(), {"Content-Type": "image/jpeg"})
            )
            paths.append(path)
        items = one_partition_items(CONTENT_TYPE, [self.origin.url(path) for path in paths])
        import_items(self.catalog, items)
        self.shard = shard_of(CONTENT_TYPE, items[0].content_id)
        self.paths = {item.artwork_id: path for item, path in zip(items, paths, strict=True)}

    def processed(self) -> int:
        with self.catalog.session() as session:
            return int(
                session.scalar(select(func.count()).where(Artwork.status == ArtworkStatus.PROCESSED.value))
                or 0
            )


@dataclass
class AfterFault:
    """What the catalog recorded as done when the faulted run ended."""

    sources_stored: set[int]  # artwork whose source the catalog recorded as stored
    processed_at: dict[int, datetime]
    renditions: dict[str, tuple[str | None, datetime]]  # key -> (etag, last modified) of recorded ones
    statuses: dict[str, int]
    unrecorded: int = 0  # objects stored that the catalog does not reference (yet)
    deleted_by_cleanup: int = 0  # of those, what a cleanup (grace 0) run right then deleted


def _after_fault(scenario: Scenario) -> AfterFault:
    with scenario.catalog.session() as session:
        rows = session.scalars(select(Artwork)).all()
        sources = {row.id for row in rows if row.source_checksum is not None}
        processed = {row.id: row.processed_at for row in rows if row.status == ArtworkStatus.PROCESSED.value}
        keys = {r.storage_key for row in rows if row.id in processed for r in row.renditions}
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
    listed = {
        obj.key: (obj.etag, obj.last_modified)
        for obj in scenario.store.list(Bucket.THUMBNAILS, partition_prefix(*scenario.partition))
    }
    missing = keys - set(listed)
    assert not missing, f"recorded renditions missing right after the fault: {sorted(missing)[:5]}"
    # Objects written but never recorded belong to artwork still in work: a cleanup running now, even
    # with no grace period, must leave them to the rerun, which writes the same keys again.
    unrecorded = audit(scenario.catalog, scenario.store, [scenario.partition]).unreferenced
    cleanup = clean_orphans(
        scenario.catalog, scenario.store, [scenario.partition], grace=timedelta(0), dry_run=False
    )
    assert cleanup.deleted == 0 and cleanup.orphans_in_progress == len(unrecorded), cleanup.as_dict()
    return AfterFault(
        sources, processed, {key: listed[key] for key in keys}, statuses, len(unrecorded), cleanup.deleted
    )


def _verify_converged(scenario: Scenario, before: AfterFault, fault: str, outcome: str) -> None:
    """The checks every fault ends with; records one row for the published table."""
    result = audit(scenario.catalog, scenario.store, [scenario.partition])
    orphans = set(result.unreferenced)
    cleanup = clean_orphans(
        scenario.catalog, scenario.store, [scenario.partition], grace=timedelta(0), dry_run=False
    )
    after_cleanup = audit(scenario.catalog, scenario.store, [scenario.partition])

    refetched = sorted(a for a in before.sources_stored if scenario.origin.hits(scenario.paths[a]) != 1)
    listed = {
        obj.key: (obj.etag, obj.last_modified)
        for obj in scenario.store.list(Bucket.THUMBNAILS, partition_prefix(*scenario.partition))
    }
    rewritten = sorted(key for key, state in before.renditions.items() if listed.get(key) != state)
    with scenario.catalog.session() as session:
        reprocessed = sorted(
            artwork
            for artwork, at in before.processed_at.items()
            if session.get(Artwork, artwork).processed_at != at
        )

    record(
        "fault",
        fault=fault,
        faulted_run=outcome,
        after_faulted_run=", ".join(f"{n} {status}" for status, n in sorted(before.statuses.items())),
        unrecorded_objects=before.unrecorded,
        deleted_by_cleanup_then=before.deleted_by_cleanup,
        after_rerun=f"{result.processed} processed, {result.failed} failed",
        unsettled_rows=len(result.unsettled),
        missing_objects=len(result.missing),
        orphans_removed=cleanup.deleted,
        refetched=len(refetched),
        rerendered=len(rewritten),
    )
    assert result.unsettled == [], result.unsettled
    assert result.missing == [], result.missing
    assert cleanup.deleted == len(orphans), (cleanup.as_dict(), orphans)
    assert after_cleanup.unreferenced == set() and after_cleanup.missing == []
    assert after_cleanup.statuses == result.statuses
    assert refetched == [], f"sources stored before the fault were fetched again: {refetched}"
    assert rewritten == [] and reprocessed == [], (rewritten, reprocessed)
    # Good sources all the way: after the rerun every artwork is processed.
    assert result.processed == ARTWORKS, result.statuses


class SyncThread(threading.Thread):
    """One sync of the scenario's partition, in the background, keeping its outcome."""

    def __init__(self, run: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._run_sync = run
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self._run_sync()
        except BaseException as exc:  # recorded: the test decides whether it matters
            self.error = exc
        self.seconds = time.monotonic() - started

    def outcome(self) -> str:
        if self.error is None:
            return f"finished in {self.seconds:.0f}s"
        return f"stopped after {self.seconds:.0f}s with {type(self.error).__name__}"


class RenditionGate:
    """The real store, with a gate that holds every rendition upload after the first `after` of them.

    It decides *when* the fault lands (mid-render, with some artwork done and some not), not what
    happens: every call still goes to the real server, before and after the fault.
    """

    def __init__(self, inner: ObjectStore, *, after: int) -> None:
        self.inner = inner
        self.after = after
        self.reached = threading.Event()
        self.opened = threading.Event()
        self._count = 0
        self._lock = threading.Lock()

    def put(self, bucket: Bucket, key: str, data: bytes, **kwargs: Any) -> Any:
        if bucket == Bucket.THUMBNAILS:
            with self._lock:
                self._count += 1
                hold = self._count > self.after
            if hold:
                self.reached.set()
                self.opened.wait(timeout=120)
        return self.inner.put(bucket, key, data, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _core_sync(scenario: Scenario, settings: PipelineSettings, store: ObjectStore | None = None) -> None:
    with ImageFetcher(settings.fetch) as fetcher:
        sync_scope(
            scenario.catalog,
            store or scenario.store,
            fetcher,
            settings,
            Scope(partitions=(scenario.partition,)),
        )


def _pipeline_settings(origin: LoopbackOrigin, *, render_workers: int = 2) -> PipelineSettings:
    return PipelineSettings.from_settings(
        Settings.model_validate(
            {"ALLOWED_SOURCE_HOSTS": origin.netloc, "FETCH_MAX_RETRIES": 0, "RENDER_WORKERS": render_workers}
        )
    )


def _s3_store(server: services.SeaweedFS, buckets: dict[Bucket, str]) -> S3ObjectStore:
    return S3ObjectStore(
        bucket_names=buckets,
        endpoint_url=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region="us-east-1",
    )


def test_seaweedfs_stopped_mid_sync_then_rerun_converges(
    postgres_catalog: Catalog, s3_bucket_names: dict[Bucket, str], corpus_dir: Path, tmp_path: Path
) -> None:
    server = services.start_seaweedfs(tmp_path / "seaweedfs")
    try:
        store = _s3_store(server, s3_bucket_names)
        store.ensure_buckets()
        with LoopbackOrigin() as origin:
            scenario = Scenario(origin, postgres_catalog, store)
            scenario.load(corpus_dir)
            settings = _pipeline_settings(origin)
            gate = RenditionGate(store, after=len(SIZES) * 6)
            sync = SyncThread(lambda: _core_sync(scenario, settings, gate))
            sync.start()
            assert gate.reached.wait(timeout=60), "the sync never got to rendering"
            server.stop(timeout=STOP_SECONDS)
            gate.opened.set()  # the held uploads, and everything after them, meet a dead server
            sync.join(timeout=180)
            assert not sync.is_alive(), "the sync hung with storage down"
            server.start()
            _wait_until_serving(server, s3_bucket_names)
            before = _after_fault(scenario)
            assert before.statuses.get("processed", 0) < ARTWORKS, "the fault came too late to matter"
            _core_sync(scenario, settings)  # the rerun
            _verify_converged(scenario, before, "SeaweedFS stopped mid-render, started again", sync.outcome())
    finally:
        server.stop(timeout=STOP_SECONDS)


def _wait_until_serving(server: services.SeaweedFS, buckets: dict[Bucket, str], timeout: float = 60) -> None:
    """A restarted SeaweedFS lists buckets before its volumes serve reads and writes; wait for both.

    The probe has a client of its own that does not retry, so each poll is quick.
    """
    store = S3ObjectStore(
        bucket_names=buckets,
        endpoint_url=None,
        access_key_id=None,
        secret_access_key=None,
        region="",
        client=server.s3_client(read_timeout=2),
    )
    probe = "readiness-probe/ready"  # outside the layout: no partition prefix, never an orphan

    def round_trip() -> bool:
        store.put(Bucket.THUMBNAILS, probe, b"ok", content_type="text/plain")
        return store.get(Bucket.THUMBNAILS, probe) == b"ok"

    wait_until(
        round_trip,
        timeout,
        0.1,
        "SeaweedFS did not serve reads and writes after its restart",
        ignore=(StorageError,),
    )
    store.delete(Bucket.THUMBNAILS, [probe])


def test_postgresql_restarted_mid_sync_then_rerun_converges(
    seaweedfs: services.SeaweedFS,
    s3_store: S3ObjectStore,
    corpus_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tvdb_images.pipeline.batching")
    with PrivatePostgres() as postgres:
        url = postgres.create_database("catalog")
        migrate.upgrade(url)
        catalog = Catalog(url)
        try:
            with LoopbackOrigin() as origin:
                scenario = Scenario(origin, catalog, s3_store)
                scenario.load(corpus_dir)
                settings = _pipeline_settings(origin, render_workers=1)
                gate = RenditionGate(s3_store, after=len(SIZES) * 4)
                sync = SyncThread(lambda: _core_sync(scenario, settings, gate))
                sync.start()
                assert gate.reached.wait(timeout=60), "the sync never got to rendering"
                postgres.stop()
                gate.opened.set()  # rendering goes on while the database is away, like a failover
                time.sleep(DATABASE_DOWN_SECONDS)
                postgres.start()
                sync.join(timeout=180)
                assert not sync.is_alive(), "the sync hung across the database restart"
                retries = sum("retrying" in r.getMessage() for r in caplog.records)
                # The outage was felt: the catalog writer retried a batch, or the run stopped on it.
                assert retries > 0 or sync.error is not None, "the restart missed the sync"
                before = _after_fault(scenario)
                _core_sync(scenario, settings)
                _verify_converged(
                    scenario,
                    before,
                    f"PostgreSQL down {DATABASE_DOWN_SECONDS:.0f}s mid-render, then back",
                    sync.outcome() + f" ({retries} catalog batches retried)",
                )
        finally:
            catalog.dispose()


# The child renders each artwork a quarter second slower than it would, so that results reach the
# catalog a few at a time (the writer flushes every second) and the kill lands between two flushes
# however fast the machine is.
KILLED_RUN = """
import sys
import time
import dagster as dg
from tvdb_images.pipeline import render
from tvdb_images.definitions import defs
_render = render.render_renditions
def _slow_render(*args, **kwargs):
    time.sleep(0.25)
    return _render(*args, **kwargs)
render.render_renditions = _slow_render
job = defs.resolve_job_def("sync_images")
result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=sys.argv[1])
sys.exit(0 if result.success else 1)
"""


def test_sync_process_killed_mid_partition_then_rerun_converges(
    postgres_catalog: Catalog,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store: S3ObjectStore,
    corpus_dir: Path,
    tmp_path: Path,
) -> None:
    with LoopbackOrigin() as origin:
        scenario = Scenario(origin, postgres_catalog, s3_store)
        scenario.load(corpus_dir)
        values = {
            "DATABASE_URL": postgres_catalog.url,
            **seaweedfs.storage_values(s3_bucket_names[Bucket.ORIGINALS], s3_bucket_names[Bucket.THUMBNAILS]),
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "FETCH_MAX_RETRIES": "0",
            "RENDER_WORKERS": "1",
            "TVDB_IMAGES_DATA_DIR": str(tmp_path / "data"),
        }
        key = str(partition_key(*scenario.partition))
        run = ManagedProcess(
            "sync-run",
            [sys.executable, "-c", KILLED_RUN, key],
            env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", **values},
            cwd=tmp_path,  # no .env from the repository
            log_dir=tmp_path,
        ).start()
        try:
            wait_until(
                lambda: scenario.processed() >= 3 or not run.alive(), 120, 0.05, "no artwork processed"
            )
            assert run.alive(), f"the run ended before it could be killed:\n{run.log_tail()}"
            run.kill()
        finally:
            run.stop()
        before = _after_fault(scenario)
        assert before.statuses.get("processed", 0) < ARTWORKS, "the kill came too late to matter"
        assert run_sync_images(Settings.model_validate(values), *scenario.partition).success
        _verify_converged(
            scenario, before, "SIGKILL to the process running `sync_images`", "killed mid-render"
        )
