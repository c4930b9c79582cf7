"""View counts in the catalog: batched upserts that add up, the popular list, a day's totals and when
its counts are complete, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkViewCount, ArtworkViewFlush
from tvdb_images.catalog.view_stats import day_completeness, day_totals, popular_artwork
from tvdb_images.catalog.views import ViewBatch, day_end, flush_views

DAY = date(2026, 11, 30)
NEXT = DAY + timedelta(days=1)
DURING = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _artwork(catalog: Catalog) -> None:
    with catalog.session() as session:
        for artwork_id, content_type, image_type in (
            (1, "series", "poster"),
            (2, "series", "fanart"),
            (3, "movies", "poster"),
        ):
            session.add(
                Artwork(
                    id=artwork_id,
                    content_type=content_type,
                    content_id=artwork_id * 10,
                    image_type=image_type,
                    source_url=f"https://artworks.thetvdb.com/{artwork_id}.jpg",
                )
            )


def _flush(catalog: Catalog, worker: str, batch: ViewBatch, open_days: set[date], **kw: bool) -> set[date]:
    with catalog.session() as session:
        return flush_views(session, worker, batch, open_days, **kw)


def test_flushes_add_to_the_stored_counts_and_the_popular_list_ranks_them(any_catalog: Catalog) -> None:
    _artwork(any_catalog)
    first = ViewBatch({(DAY, 1, "medium"): 3, (DAY, 2, "small"): 5, (DAY, 3, "small"): 1}, {}, DURING)
    assert _flush(any_catalog, "w1", first, set()) == {DAY}  # the day is not over: still open
    second = ViewBatch({(DAY, 1, "medium"): 4, (DAY, 1, "large"): 1, (NEXT, 3, "small"): 9}, {}, DURING)
    assert _flush(any_catalog, "w2", second, set()) == {DAY, NEXT}
    with any_catalog.session() as session:
        stored = {(r.day, r.artwork_id, r.size): r.count for r in session.scalars(select(ArtworkViewCount))}
        ranked = popular_artwork(session, since=DAY, until=DAY)
        series_only = popular_artwork(session, since=DAY, until=NEXT, content_type="series", limit=1)
        both_days = popular_artwork(session, since=DAY, until=NEXT, image_type="poster")
        totals = day_totals(session, DAY)
    assert stored == {
        (DAY, 1, "medium"): 7,
        (DAY, 1, "large"): 1,
        (DAY, 2, "small"): 5,
        (DAY, 3, "small"): 1,
        (NEXT, 3, "small"): 9,
    }
    assert [(p.artwork_id, p.views, p.by_size) for p in ranked] == [
        (1, 8, {"large": 1, "medium": 7}),
        (2, 5, {"small": 5}),
        (3, 1, {"small": 1}),
    ]
    assert [(p.artwork_id, p.views) for p in series_only] == [(1, 8)]
    assert [(p.artwork_id, p.content_type, p.views) for p in both_days] == [
        (3, "movies", 10),
        (1, "series", 8),
    ]
    assert (totals.views, totals.artworks, totals.negative_rows) == (14, 3, 0)
    assert totals.by_size == {"large": 1, "medium": 7, "small": 6}
    assert totals.by_content_type == {"movies": 1, "series": 13}


def test_a_day_is_complete_once_every_worker_flushed_past_its_end_or_stopped(any_catalog: Catalog) -> None:
    _artwork(any_catalog)
    open_a = _flush(any_catalog, "a", ViewBatch({(DAY, 1, "small"): 2}, {}, DURING), set())
    _flush(any_catalog, "b", ViewBatch({(DAY, 2, "small"): 3}, {}, DURING), set(), stopped=True)
    with any_catalog.session() as session:
        during = day_completeness(session, DAY, now=DURING + timedelta(hours=1))
        after = day_completeness(session, DAY, now=day_end(DAY) + timedelta(minutes=10))
    assert not during.over and len(during.problems()) == 2
    assert [w.worker for w in after.pending] == ["a"]  # b stopped cleanly; a did not flush past midnight
    assert after.flushed_views == after.stored_views == 5
    assert "worker a last flushed at" in after.problems()[0]

    # Worker a's next flush, after midnight, carries the day's watermark past its end (no new views).
    past = ViewBatch({}, {}, day_end(DAY) + timedelta(seconds=3))
    assert _flush(any_catalog, "a", past, open_a) == set()
    with any_catalog.session() as session:
        done = day_completeness(session, DAY, now=day_end(DAY) + timedelta(minutes=10))
    assert done.problems() == [] and done.inconsistencies() == []

    # Dropped views (a full counter) and counts that do not add up make it incomplete again.
    _flush(any_catalog, "c", ViewBatch({}, {DAY: 4}, DURING), set(), stopped=True)
    with any_catalog.session() as session:
        session.add(ArtworkViewCount(day=DAY, artwork_id=3, size="small", count=-2))
    with any_catalog.session() as session:
        bad = day_completeness(session, DAY, now=day_end(DAY) + timedelta(minutes=10))
        totals = day_totals(session, DAY)
    assert bad.dropped == 4 and totals.negative_rows == 1
    assert any("4 views were not counted" in p for p in bad.problems())
    assert bad.inconsistencies() == ["the workers flushed 5 views but artwork_views holds 3"]


def test_concurrent_flushes_of_the_same_keys_lose_nothing_and_never_deadlock(
    postgres_catalog: Catalog,
) -> None:
    """Workers flush overlapping keys at the same time; key-ordered upserts keep every increment."""
    keys = [(DAY, artwork_id, size) for artwork_id in range(1, 200) for size in ("small", "medium")]
    errors: list[BaseException] = []

    def worker(name: str, order: int) -> None:
        try:
            for _ in range(10):
                counts = dict.fromkeys(keys[::order], 1)  # the other worker's keys in reverse order
                _flush(postgres_catalog, name, ViewBatch(counts, {}, DURING), set())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}", 1 if i % 2 else -1)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with postgres_catalog.session() as session:
        total = session.scalar(select(func.sum(ArtworkViewCount.count)))
        flushed = session.scalar(select(func.sum(ArtworkViewFlush.views)))
        counts = set(session.scalars(select(ArtworkViewCount.count)))
    assert total == flushed == 4 * 10 * len(keys)
    assert counts == {40}
