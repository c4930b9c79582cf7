"""Artwork counts by (content_type, status, failure_cause) without scanning the artwork table.

Triggers on `artwork` (migration 0007) append signed deltas to `artwork_status_counts`; a group's
count is the sum of its rows. `read` sums them (a few hundred rows once folded, against a scan of
every artwork for the same figures by `exact`), and `fold` compacts them into one row per group.

`fold` is safe beside writers and other folds: it deletes the rows it sees and inserts their sums
in one transaction. On PostgreSQL a row appended by a writer after the fold's snapshot is neither
deleted nor summed, and a second fold skips the rows the first one deleted and never sees its sums;
on SQLite the DELETE takes the database's single write lock first. Readers see the table before or
after a fold, never half of one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, text

from tvdb_images.catalog.models import Artwork, ArtworkStatusCount

Group = tuple[str, str, str | None]  # (content_type, status, failure_cause)

# Readers fold once the deltas outnumber this: summing a few thousand rows stays cheap.
FOLD_ABOVE = 1000

_GROUP = (ArtworkStatusCount.content_type, ArtworkStatusCount.status, ArtworkStatusCount.failure_cause)
_PG_FOLD = text(
    "WITH folded AS (DELETE FROM artwork_status_counts "
    "RETURNING content_type, status, failure_cause, count), "
    "kept AS (INSERT INTO artwork_status_counts (content_type, status, failure_cause, count) "
    "SELECT content_type, status, failure_cause, sum(count) FROM folded "
    "GROUP BY content_type, status, failure_cause HAVING sum(count) <> 0 RETURNING 1) "
    "SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM kept)"
)


@dataclass(frozen=True)
class StatusCounts:
    counts: dict[Group, int]  # groups with a non-zero count
    rows: int  # delta rows summed: what a fold would compact


def read_statement() -> Select[str, str, str | None, int, int]:
    """Per group: the sum of its deltas and how many there are."""
    return select(*_GROUP, func.sum(ArtworkStatusCount.count), func.count()).group_by(*_GROUP)


def read(connection: Connection) -> StatusCounts:
    """The count of every group, summed from the delta rows."""
    counts: dict[Group, int] = {}
    rows = 0
    for content_type, status, cause, total, deltas in connection.execute(read_statement()):
        rows += deltas
        if total:
            counts[content_type, status, cause] = int(total)
    return StatusCounts(counts, rows)


def fold(engine: Engine) -> int:
    """Compact the delta rows into one per group (none for a group at zero); returns the rows removed."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            return int(connection.execute(_PG_FOLD).scalar_one())
        removed = connection.execute(
            delete(ArtworkStatusCount).returning(*_GROUP, ArtworkStatusCount.count)
        ).all()
        sums: Counter[Group] = Counter()
        for content_type, status, cause, count in removed:
            sums[content_type, status, cause] += count
        values = [
            {"content_type": group[0], "status": group[1], "failure_cause": group[2], "count": total}
            for group, total in sums.items()
            if total
        ]
        if values:
            connection.execute(insert(ArtworkStatusCount), values)
        return len(removed) - len(values)


def exact_statement() -> Select[str, str, str | None, int]:
    """A grouped count over every artwork row: the check, and the old way of the gauges."""
    group = (Artwork.content_type, Artwork.status, Artwork.failure_cause)
    return select(*group, func.count()).group_by(*group)


def exact(connection: Connection) -> dict[Group, int]:
    """The same figures as `read`, from a scan of the artwork table."""
    rows = connection.execute(exact_statement())
    return {(ct, status, cause): int(n) for ct, status, cause, n in rows}
