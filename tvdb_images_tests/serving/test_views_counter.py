"""The per-worker view counter: exact under threads, bounded in memory, and a refused flush keeps its
counts for the next one (fast unit tests; the flushes themselves write a real SQLite catalog)."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from serving.views import ViewCounter, ViewFlusher
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import ArtworkViewCount, ArtworkViewFlush

DAY = date(2026, 11, 30)


def test_threads_recording_at_once_lose_no_view() -> None:
    counter = ViewCounter(max_keys=1000)
    taken: list[int] = []

    def record() -> None:
        for i in range(5000):
            counter.record(i % 50, "small", day=DAY)

    def take() -> None:
        for _ in range(200):
            taken.append(sum(counter.take().counts.values()))

    threads = [threading.Thread(target=record) for _ in range(4)] + [threading.Thread(target=take)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(taken) + sum(counter.take().counts.values()) == 4 * 5000


def test_the_counter_holds_at_most_max_keys_and_counts_the_rest_as_dropped() -> None:
    counter = ViewCounter(max_keys=3)
    for artwork_id in range(5):
        counter.record(artwork_id, "small", day=DAY)
        counter.record(artwork_id, "small", day=DAY)
    batch = counter.take()
    assert batch.counts == {(DAY, 0, "small"): 2, (DAY, 1, "small"): 2, (DAY, 2, "small"): 2}
    assert batch.dropped == {DAY: 4}
    assert counter.keys == 0

    counter.record(9, "large", day=DAY)
    counter.put_back(batch)  # a refused flush: back in, within the bound
    again = counter.take()
    assert sum(again.counts.values()) + sum(again.dropped.values()) == 1 + 6 + 4
    assert len(again.counts) == 3


def test_a_flush_the_catalog_refuses_keeps_its_counts_for_the_next(sqlite_catalog: Catalog, tmp_path) -> None:
    counter = ViewCounter(max_keys=100)
    broken = Catalog(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no artwork_views table
    flusher = ViewFlusher(counter, broken, interval=1)
    for _ in range(7):
        counter.record(5, "medium", day=DAY)
    assert flusher.flush() is False
    assert sum(counter.take().counts.values()) == 7
    for _ in range(7):
        counter.record(5, "medium", day=DAY)
    working = ViewFlusher(counter, sqlite_catalog, interval=1)
    assert working.flush(stopped=True) is True
    with sqlite_catalog.session() as session:
        assert session.scalar(select(func.sum(ArtworkViewCount.count))) == 7
        flush = session.scalars(select(ArtworkViewFlush)).one()
    assert (flush.worker, flush.views, flush.stopped) == (working.worker, 7, True)
    broken.dispose()
