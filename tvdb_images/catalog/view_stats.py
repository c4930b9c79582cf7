"""Reading view counts: the most viewed artwork over recent days, and one day's totals and whether
every worker's counts for it have landed (what `artwork_views_daily` and its check report).

A day is **complete** when it is over and every serving worker that counted views on it has either
flushed past its end (its watermark `flushed_through` is at or after the next midnight UTC) or
stopped cleanly (its final flush at shutdown landed), none of its views were dropped for a full
counter, and the workers' flushed totals add up to the counts stored. A worker that was killed keeps
its last watermark: the day stays incomplete, naming the worker and what it may have lost (the views
of at most one flush interval before it died).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork, ArtworkViewCount, ArtworkViewFlush
from tvdb_images.catalog.views import day_end


@dataclass(frozen=True)
class PopularArtwork:
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    views: int
    by_size: dict[str, int]


def popular_artwork(
    session: Session,
    *,
    since: date,
    until: date,
    content_type: str | None = None,
    image_type: str | None = None,
    limit: int = 20,
) -> list[PopularArtwork]:
    """The most viewed artwork from `since` to `until` (UTC days, both included), most views first,
    then lowest id; artwork removed from the catalog since is left out."""
    total = func.sum(ArtworkViewCount.count)
    query = (
        select(Artwork.id, Artwork.content_type, Artwork.content_id, Artwork.image_type, total)
        .join(Artwork, Artwork.id == ArtworkViewCount.artwork_id)
        .where(ArtworkViewCount.day >= since, ArtworkViewCount.day <= until)
        .group_by(Artwork.id, Artwork.content_type, Artwork.content_id, Artwork.image_type)
        .order_by(total.desc(), Artwork.id)
        .limit(limit)
    )
    if content_type is not None:
        query = query.where(Artwork.content_type == content_type)
    if image_type is not None:
        query = query.where(Artwork.image_type == image_type)
    rows = session.execute(query).all()
    sizes: dict[int, dict[str, int]] = defaultdict(dict)
    if rows:
        for artwork_id, size, count in session.execute(
            select(ArtworkViewCount.artwork_id, ArtworkViewCount.size, func.sum(ArtworkViewCount.count))
            .where(ArtworkViewCount.day >= since, ArtworkViewCount.day <= until)
            .where(ArtworkViewCount.artwork_id.in_([row[0] for row in rows]))
            .group_by(ArtworkViewCount.artwork_id, ArtworkViewCount.size)
            .order_by(ArtworkViewCount.artwork_id, ArtworkViewCount.size)
        ):
            sizes[artwork_id][size] = int(count)
    return [
        PopularArtwork(artwork_id, ctype, content_id, itype, int(views), sizes[artwork_id])
        for artwork_id, ctype, content_id, itype, views in rows
    ]


@dataclass
class DayTotals:
    day: date
    views: int = 0
    artworks: int = 0
    negative_rows: int = 0  # rows with a count below zero: never written by a flush
    by_size: dict[str, int] = field(default_factory=dict)
    by_content_type: dict[str, int] = field(default_factory=dict)
    top: list[PopularArtwork] = field(default_factory=list)


def day_totals(session: Session, day: date, *, top: int = 20) -> DayTotals:
    totals = DayTotals(day)
    on_day = ArtworkViewCount.day == day
    views, artworks, negative = session.execute(
        select(
            func.coalesce(func.sum(ArtworkViewCount.count), 0),
            func.count(func.distinct(ArtworkViewCount.artwork_id)),
            func.count().filter(ArtworkViewCount.count < 0),
        ).where(on_day)
    ).one()
    totals.views, totals.artworks, totals.negative_rows = int(views), int(artworks), int(negative)
    for size, count in session.execute(
        select(ArtworkViewCount.size, func.sum(ArtworkViewCount.count))
        .where(on_day)
        .group_by(ArtworkViewCount.size)
        .order_by(ArtworkViewCount.size)
    ):
        totals.by_size[size] = int(count)
    for content_type, count in session.execute(
        select(Artwork.content_type, func.sum(ArtworkViewCount.count))
        .join(Artwork, Artwork.id == ArtworkViewCount.artwork_id)
        .where(on_day)
        .group_by(Artwork.content_type)
        .order_by(Artwork.content_type)
    ):
        totals.by_content_type[content_type] = int(count)
    totals.top = popular_artwork(session, since=day, until=day, limit=top)
    return totals


@dataclass(frozen=True)
class WorkerFlush:
    worker: str
    views: int
    dropped: int
    flushed_through: datetime
    stopped: bool


@dataclass
class DayCompleteness:
    day: date
    checked_at: datetime
    workers: list[WorkerFlush]
    stored_views: int

    @property
    def over(self) -> bool:
        return self.checked_at >= day_end(self.day)

    @property
    def pending(self) -> list[WorkerFlush]:
        """Workers whose counts of the day may not all be stored: not flushed past its end, not stopped."""
        end = day_end(self.day)
        return [w for w in self.workers if not w.stopped and w.flushed_through < end]

    @property
    def flushed_views(self) -> int:
        return sum(w.views for w in self.workers)

    @property
    def dropped(self) -> int:
        return sum(w.dropped for w in self.workers)

    def problems(self) -> list[str]:
        """Why the day's counts are not complete yet; empty when they are."""
        found = []
        if not self.over:
            found.append(f"{self.day} is not over yet (until {day_end(self.day).isoformat()})")
        for worker in self.pending:
            found.append(
                f"worker {worker.worker} last flushed at {worker.flushed_through.isoformat()} and has not "
                "flushed past the day's end nor stopped cleanly (if it was killed, the views it counted "
                "after that flush, at most one VIEW_FLUSH_SECONDS interval, are lost)"
            )
        if self.dropped:
            found.append(
                f"{self.dropped} views were not counted: a worker's counter was full (VIEW_MAX_KEYS)"
            )
        return found

    def inconsistencies(self) -> list[str]:
        """Stored counts no flush accounts for (every flush writes both tables in one transaction)."""
        if self.flushed_views == self.stored_views:
            return []
        return [f"the workers flushed {self.flushed_views} views but artwork_views holds {self.stored_views}"]


def day_completeness(session: Session, day: date, *, now: datetime | None = None) -> DayCompleteness:
    workers = [
        WorkerFlush(worker, int(views), int(dropped), _aware(flushed_through), bool(stopped))
        for worker, views, dropped, flushed_through, stopped in session.execute(
            select(
                ArtworkViewFlush.worker,
                ArtworkViewFlush.views,
                ArtworkViewFlush.dropped,
                ArtworkViewFlush.flushed_through,
                ArtworkViewFlush.stopped,
            )
            .where(ArtworkViewFlush.day == day)
            .order_by(ArtworkViewFlush.worker)
        )
    ]
    stored = session.scalar(
        select(func.coalesce(func.sum(ArtworkViewCount.count), 0)).where(ArtworkViewCount.day == day)
    )
    return DayCompleteness(day, now or datetime.now(UTC), workers, int(stored or 0))


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every watermark is written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
