"""Forced refresh: send chosen artwork back to `pending` so the next sync downloads and renders it again.

An artwork stays served from its current objects until the new download replaces them; refreshing
costs nothing but the re-download. The selection narrows by every filter given (they combine with AND);
an empty selection refreshes nothing unless the caller asks for everything explicitly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.wording import counted
from tvdb_images.config import CONTENT_TYPES

STATUSES: tuple[str, ...] = tuple(status.value for status in ArtworkStatus)
EXAMPLES = 20


class SelectionError(ValueError):
    """A selection that names something the catalog cannot have (unknown status or content type)."""


@dataclass(frozen=True)
class ArtworkSelection:
    """Which artwork to act on: ids, items (content_type, content_id), a content type, statuses, causes.

    Ids and items add up (an artwork named either way is chosen); content type, status and cause then
    narrow that (or the whole catalog, when no ids or items are given).
    """

    artwork_ids: tuple[int, ...] = ()
    items: tuple[tuple[str, int], ...] = ()
    content_type: str | None = None
    statuses: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()
    everything: bool = False

    def __post_init__(self) -> None:
        for status in self.statuses:
            if status not in STATUSES:
                raise SelectionError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        for content_type in [self.content_type, *(t for t, _ in self.items)]:
            if content_type is not None and content_type not in CONTENT_TYPES:
                raise SelectionError(
                    f"unknown content type {content_type!r}; expected one of {', '.join(CONTENT_TYPES)}"
                )

    @property
    def is_empty(self) -> bool:
        filters = (self.artwork_ids, self.items, self.content_type, self.statuses, self.causes)
        return not self.everything and not any(filters)

    def clause(self) -> Any:
        named: list[Any] = []
        if self.artwork_ids:
            named.append(Artwork.id.in_(sorted(set(self.artwork_ids))))
        if self.items:
            named.append(tuple_(Artwork.content_type, Artwork.content_id).in_(sorted(set(self.items))))
        clauses: list[Any] = [or_(*named)] if named else []
        if self.content_type is not None:
            clauses.append(Artwork.content_type == self.content_type)
        if self.statuses:
            clauses.append(Artwork.status.in_(self.statuses))
        if self.causes:
            clauses.append(Artwork.failure_cause.in_(self.causes))
        return and_(*clauses) if clauses else Artwork.id.isnot(None)


@dataclass
class RefreshReport:
    dry_run: bool
    matched: int = 0
    marked: int = 0  # sent back to pending (a dry run marks none: see would_mark)
    would_mark: int = 0
    already_pending: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # matched artwork by its status before
    examples: list[int] = field(default_factory=list)  # ids of (would-be) marked artwork

    def summary(self) -> str:
        statuses = ", ".join(f"{count} {status}" for status, count in sorted(self.by_status.items()))
        verb = f"would mark {self.would_mark}" if self.dry_run else f"marked {self.marked}"
        return (
            f"{counted(self.matched, 'artwork')} matched ({statuses or 'none'}); {verb} for re-download"
            f" by the next sync; {self.already_pending} already pending"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def refresh_artwork(
    session: Session, selection: ArtworkSelection, *, dry_run: bool = False, now: datetime | None = None
) -> RefreshReport:
    """Mark the selected artwork for re-download (fresh attempt budget, failure cleared)."""
    report = RefreshReport(dry_run=dry_run)
    if selection.is_empty:
        raise SelectionError("name what to refresh (artwork ids, items, content type, status, cause) or all")
    where = selection.clause()
    counts = Counter(
        dict(
            session.execute(select(Artwork.status, func.count()).where(where).group_by(Artwork.status)).all()
        )
    )
    report.by_status = dict(counts)
    report.matched = sum(counts.values())
    report.already_pending = counts.get(ArtworkStatus.PENDING.value, 0)
    to_mark = and_(where, Artwork.status != ArtworkStatus.PENDING.value)
    report.examples = list(
        session.scalars(select(Artwork.id).where(to_mark).order_by(Artwork.id).limit(EXAMPLES))
    )
    if dry_run:
        report.would_mark = report.matched - report.already_pending
        return report
    result = session.execute(
        update(Artwork)
        .where(to_mark)
        .values(
            status=ArtworkStatus.PENDING.value,
            attempts=0,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
            updated_at=now or datetime.now(UTC),  # the catalog-change sensor picks these partitions up
        )
        .execution_options(synchronize_session=False)
    )
    report.marked = int(cast(CursorResult[Any], result).rowcount or 0)
    return report


def parse_item(text: str) -> tuple[str, int]:
    """`series/123` (or `series:123`) -> ("series", 123)."""
    for separator in ("/", ":"):
        if separator in text:
            content_type, _, content_id = text.partition(separator)
            if content_type in CONTENT_TYPES and content_id.isdigit():
                return content_type, int(content_id)
    raise SelectionError(
        f"item {text!r} is not CONTENT_TYPE/ID (e.g. series/81189); types: {', '.join(CONTENT_TYPES)}"
    )


def parse_items(texts: Iterable[str]) -> tuple[tuple[str, int], ...]:
    return tuple(parse_item(text) for text in texts)


def selection_from(
    *,
    artwork_ids: Iterable[int] = (),
    items: Iterable[str] = (),
    content_type: str | None = None,
    statuses: Iterable[str] = (),
    causes: Iterable[str] = (),
    everything: bool = False,
) -> ArtworkSelection:
    """The selection a command line or a run config names, items written CONTENT_TYPE/ID: the CLI and
    the `refresh_artwork` job read the same words the same way (SelectionError names a bad one)."""
    return ArtworkSelection(
        artwork_ids=tuple(artwork_ids),
        items=parse_items(items),
        content_type=content_type,
        statuses=tuple(statuses),
        causes=tuple(causes),
        everything=everything,
    )
