"""View analytics in a serving worker: count image views in memory, flush them to the catalog in
batches, never a database write per request.

**What counts as a view:** a GET of an image (`/{content_type}/{content_id}/{image_type}/{size}` or
`/artwork/{artwork_id}/{size}`) answered 200 (the bytes), 304 (a client showing its cached copy
again) or 307 (a redirect to the CDN, which then sends the bytes). Not HEAD, not errors, not the 302
to a TVDB source for artwork not stored yet.

**Memory:** one dict entry per (UTC day, artwork, size) seen since the last flush, at most
VIEW_MAX_KEYS; views of further keys are counted as dropped, and the day's check reports them.

**When they land:** a task flushes every VIEW_FLUSH_SECONDS and once more at shutdown (the app's
lifespan). A flush that fails (database down) puts its counts back for the next one. A worker killed
without shutting down loses what it counted since its last flush: at most one interval of its views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

from sqlalchemy.exc import SQLAlchemyError

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.views import ViewBatch, ViewKey, flush_views

log = logging.getLogger(__name__)

COUNTED_STATUSES = frozenset({200, 304, 307})


def worker_name() -> str:
    """Unique per process start: a restarted worker (same pid in a new container) is a new worker."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ViewCounter:
    """Views since the last flush. Thread-safe: the event loop records, a flush thread takes."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._counts: dict[ViewKey, int] = {}
        self._dropped: dict[date, int] = {}

    def record(self, artwork_id: int, size: str, *, day: date | None = None) -> None:
        key = (day or datetime.now(UTC).date(), artwork_id, size)
        with self._lock:
            if key in self._counts:
                self._counts[key] += 1
            elif len(self._counts) < self.max_keys:
                self._counts[key] = 1
            else:
                self._dropped[key[0]] = self._dropped.get(key[0], 0) + 1

    def take(self) -> ViewBatch:
        """Everything counted so far, leaving the counter empty; views after this go to the next batch."""
        with self._lock:
            batch = ViewBatch(self._counts, self._dropped, datetime.now(UTC))
            self._counts, self._dropped = {}, {}
        return batch

    def put_back(self, batch: ViewBatch) -> None:
        """Return a batch that could not be written; keys beyond the bound become dropped views."""
        with self._lock:
            for key, count in batch.counts.items():
                if key in self._counts or len(self._counts) < self.max_keys:
                    self._counts[key] = self._counts.get(key, 0) + count
                else:
                    self._dropped[key[0]] = self._dropped.get(key[0], 0) + count
            for day, count in batch.dropped.items():
                self._dropped[day] = self._dropped.get(day, 0) + count

    @property
    def keys(self) -> int:
        return len(self._counts)


class ViewFlusher:
    """Writes one worker's counts to the catalog: periodically while serving, once more at shutdown."""

    def __init__(self, counter: ViewCounter, catalog: Catalog, interval: float) -> None:
        self.counter = counter
        self.catalog = catalog
        self.interval = interval
        self.worker = worker_name()
        self._open_days: set[date] = set()
        self._lock = threading.Lock()  # one flush at a time: the final one waits for a running one

    def flush(self, *, stopped: bool = False) -> bool:
        """Write what was counted; False (counts kept for the next flush) if the catalog refused."""
        with self._lock:
            batch = self.counter.take()
            if not batch.counts and not batch.dropped and not self._open_days and not stopped:
                return True
            started = time.perf_counter()
            try:
                with self.catalog.session() as session:
                    still_open = flush_views(session, self.worker, batch, self._open_days, stopped=stopped)
            except SQLAlchemyError as exc:
                self.counter.put_back(batch)
                log.warning("view counts not flushed (kept for the next flush): %s", exc)
                return False
            self._open_days = still_open
            log.debug(
                "flushed %d view keys in %.1f ms", len(batch.counts), (time.perf_counter() - started) * 1000
            )
            return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.flush)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Flush every interval while the app serves, and a last time when it shuts down."""
        task = asyncio.create_task(self._run(), name="view-flush")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(self.flush, stopped=True)


class ViewAnalytics:
    """The counter and flusher of one worker, or nothing at all with VIEW_ANALYTICS=false."""

    def __init__(self, catalog: Catalog, *, enabled: bool, interval: float, max_keys: int) -> None:
        self.enabled = enabled
        self.counter = ViewCounter(max_keys)
        self.flusher = ViewFlusher(self.counter, catalog, interval)

    def record(self, artwork_id: int, size: str) -> None:
        if self.enabled:
            self.counter.record(artwork_id, size)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if not self.enabled:
            yield
            return
        async with self.flusher.running():
            yield
