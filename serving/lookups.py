"""Catalog lookups of the image and metadata endpoints, remembered for a few seconds per process.

An image request needs the artwork its URL serves and that artwork's renditions (storage keys,
checksums, sizes). Clients ask for the same few items over and over, so each answer that names stored
renditions is kept in a bounded LRU (SERVING_CACHE_ENTRIES) for at most SERVING_CACHE_SECONDS: a
repeated request then costs no database round trip and no thread hop.

Freshness: a cached answer is never served more than SERVING_CACHE_SECONDS after it was read. A
rendition the pipeline replaces, a newly stored artwork that becomes an item's primary one, or an
artwork that goes away is served by every process within that time. "No such artwork" and "not stored
yet" are not cached, so an image is served as soon as the pipeline has stored it. With 0 every request
asks the catalog.

Requests never wait for the refresh of an answer that is still in use: between half and three
quarters of the way through its lifetime (a random point, so that entries filled together are not
refreshed together), the next request for it starts one query in the background and is answered from
memory meanwhile. Only an answer nobody asked for during its whole lifetime is read again while a
request waits, and concurrent requests for it share that one query.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import TTLCache
from starlette.concurrency import run_in_threadpool

from serving.events import NO_RECORDER, Recorder
from serving.queries import ArtworkRecord, ArtworkView, CatalogReader

log = logging.getLogger(__name__)

T = TypeVar("T")
REFRESH_WINDOW = (0.5, 0.75)  # fractions of the lifetime at which an entry in use is read again


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    refresh_at: float


class TtlCache:
    """A thread-safe, bounded LRU map whose entries expire a fixed time after they were put, and say
    when they are due for a refresh (cachetools' caches are not thread-safe on their own)."""

    def __init__(self, ttl: float, entries: int, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._timer = timer
        self._entries: TTLCache[Hashable, _Entry] | None = (
            TTLCache(maxsize=entries, ttl=ttl, timer=timer) if ttl > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[Any, bool] | None:
        """The value and whether it is due for a refresh; None when absent or expired."""
        if self._entries is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        return entry.value, self._timer() >= entry.refresh_at

    def put(self, key: Hashable, value: Any) -> None:
        if self._entries is None:
            return
        refresh_at = self._timer() + self.ttl * random.uniform(*REFRESH_WINDOW)
        with self._lock:
            self._entries[key] = _Entry(value, refresh_at)

    def discard(self, key: Hashable) -> None:
        if self._entries is None:
            return
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        if self._entries is None:
            return 0
        with self._lock:
            self._entries.expire()
            return len(self._entries)


class CatalogLookups:
    """The reader's answers, cached. A query runs in the thread pool, off the event loop, and concurrent
    requests for the same key share one query."""

    def __init__(self, reader: CatalogReader, cache: TtlCache, recorder: Recorder = NO_RECORDER) -> None:
        self.reader = reader
        self.cache = cache
        self.recorder = recorder
        self._loading: dict[Hashable, asyncio.Task[Any]] = {}

    async def item_image(self, content_type: str, content_id: int, image_type: str) -> ArtworkRecord | None:
        return await self._lookup(
            ("item", content_type, content_id, image_type),
            lambda: self.reader.item_image(content_type, content_id, image_type),
            lambda record: record is not None and bool(record.renditions),
        )

    async def artwork(self, artwork_id: int) -> ArtworkView | None:
        return await self._lookup(
            ("artwork", artwork_id),
            lambda: self.reader.artwork(artwork_id),
            lambda view: view is not None and bool(view.artwork.renditions),
        )

    async def _lookup(self, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool]) -> T:
        cached = self.cache.get(key)
        self.recorder.lookup(cached is not None)
        if cached is not None:
            value, due = cached
            if due and key not in self._loading:
                self._start(key, load, keep).add_done_callback(_log_failure)
            return value
        task = self._loading.get(key) or self._start(key, load, keep)
        # Shielded: a client that disconnects cancels its own wait, not the query others wait for.
        return await asyncio.shield(task)

    def _start(self, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(self._load(key, load, keep))
        self._loading[key] = task
        task.add_done_callback(lambda _done: self._loading.pop(key, None))
        return task

    async def _load(self, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool]) -> T:
        value = await run_in_threadpool(load)
        if keep(value):
            self.cache.put(key, value)
        else:
            self.cache.discard(key)  # gone or no longer stored: never serve the old answer again
        return value


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A background refresh that failed leaves the entry to expire; the next miss reports the error."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("background refresh of a catalog lookup failed: %s", error)
