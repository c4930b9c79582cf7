"""Writing view counts: one flush adds a worker's batched counts to `artwork_views` and moves its
watermark in `artwork_view_flushes`, in one transaction, so the two always agree.

Rows are written in key order, a few hundred a statement: two workers flushing the same keys lock
them in the same order and never deadlock each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import ArtworkViewCount, ArtworkViewFlush

ROWS_PER_STATEMENT = 500

ViewKey = tuple[date, int, str]  # (UTC day, artwork id, size)


def day_end(day: date) -> datetime:
    """The first instant after `day` (UTC): a watermark at or past it covers the whole day."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@dataclass
class ViewBatch:
    """What one worker counted since its last flush, taken at `taken_at`."""

    counts: dict[ViewKey, int] = field(default_factory=dict)
    dropped: dict[date, int] = field(default_factory=dict)
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def days(self) -> set[date]:
        return {key[0] for key in self.counts} | set(self.dropped)

    def views_of(self, day: date) -> int:
        return sum(count for key, count in self.counts.items() if key[0] == day)


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"view counts are not implemented for {dialect}")  # pragma: no cover


def add_view_counts(session: Session, counts: Mapping[ViewKey, int]) -> None:
    """Add `counts` to the stored ones (`count = count + excluded.count`), inserting new keys."""
    rows = [
        {"day": day, "artwork_id": artwork_id, "size": size, "count": count}
        for (day, artwork_id, size), count in sorted(counts.items())
        if count
    ]
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        statement = _insert(session, ArtworkViewCount).values(rows[start : start + ROWS_PER_STATEMENT])
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["day", "artwork_id", "size"],
                set_={"count": ArtworkViewCount.count + statement.excluded["count"]},
            )
        )


def record_flush(
    session: Session, worker: str, batch: ViewBatch, days: Sequence[date], *, stopped: bool
) -> None:
    """Move `worker`'s watermark to `batch.taken_at` for `days`, adding what the batch holds of each."""
    rows = [
        {
            "worker": worker,
            "day": day,
            "views": batch.views_of(day),
            "dropped": batch.dropped.get(day, 0),
            "flushed_through": batch.taken_at,
            "stopped": stopped,
        }
        for day in sorted(days)
    ]
    if not rows:
        return
    statement = _insert(session, ArtworkViewFlush).values(rows)
    excluded = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["worker", "day"],
            set_={
                "views": ArtworkViewFlush.views + excluded.views,
                "dropped": ArtworkViewFlush.dropped + excluded.dropped,
                "flushed_through": excluded.flushed_through,
                "stopped": excluded.stopped,
            },
        )
    )


def flush_views(
    session: Session, worker: str, batch: ViewBatch, open_days: set[date], *, stopped: bool = False
) -> set[date]:
    """Write `batch` and the watermark of every day it or earlier flushes touched (`open_days`);
    returns the days whose end the watermark has not reached yet, to be carried by the next flush."""
    days = batch.days | open_days
    add_view_counts(session, batch.counts)
    record_flush(session, worker, batch, sorted(days), stopped=stopped)
    return {day for day in days if day_end(day) > batch.taken_at}
