"""The work queue: which artwork needs a download or a render, claimed page by page by the stages,
and how much work a scope or partition holds (discovery, the sensor, the schedules).

Reads only, except `assign_missing_layout` (a run's first step places rows inserted without a
layout) and `reset_failed` (an operator's decision to try again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.rows import select_as
from tvdb_images.catalog.scope import Scope
from tvdb_images.storage import layout


@dataclass(frozen=True)
class DownloadTask:
    artwork_id: int
    content_type: str
    content_id: int
    source_url: str
    storage_path: str
    previous_checksum: str | None
    previous_format: str | None


@dataclass(frozen=True)
class RenderTask:
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    storage_path: str
    source_format: str
    source_checksum: str
    source_width: int | None = None
    source_height: int | None = None
    source_url: str | None = None
    # What is stored now: a processed artwork's signature names its current formats (`+`-joined), so
    # a changed IMAGE_FORMATS renders only the formats it adds.
    status: str | None = None
    render_signature: str | None = None

    @property
    def original_key(self) -> str:
        return layout.original_key(self.storage_path, self.source_format)


def assign_missing_layout(session: Session, *, limit: int = 10_000) -> int:
    """Give rows a proxy inserted by itself (no shard/storage_path yet) their place in the layout."""
    rows = session.execute(
        select(Artwork.id, Artwork.content_type, Artwork.content_id, Artwork.image_type)
        .where(Artwork.storage_path.is_(None))
        .order_by(Artwork.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    taken = {
        path
        for (path,) in session.execute(
            select(Artwork.storage_path).where(
                Artwork.content_type.in_({r.content_type for r in rows}),
                Artwork.content_id.in_({r.content_id for r in rows}),
                Artwork.storage_path.isnot(None),
            )
        )
    }
    updates = []
    for row in rows:
        path = layout.artwork_storage_path(row.content_type, row.content_id, row.image_type, None)
        if path in taken:
            path = layout.artwork_storage_path(row.content_type, row.content_id, row.image_type, row.id)
        taken.add(path)
        updates.append(
            {"id": row.id, "storage_path": path, "shard": layout.shard_of(row.content_type, row.content_id)}
        )
    session.execute(update(Artwork), updates)
    return len(updates)


def assign_all_missing_layout(catalog: Catalog, *, batch: int = 10_000) -> int:
    """`assign_missing_layout` until every row has its place, one transaction per batch: a run's first
    step, so its partitions hold every row the sensor or schedule counted in them."""
    assigned = 0
    while True:
        with catalog.session() as session:
            placed = assign_missing_layout(session, limit=batch)
        assigned += placed
        if placed < batch:
            return assigned


def download_condition(max_attempts: int) -> Any:
    """Artwork whose source must be (re)downloaded: new or changed, or a retryable failure with tries left."""
    return or_(
        Artwork.status == ArtworkStatus.PENDING.value,
        and_(
            Artwork.status == ArtworkStatus.FAILED.value,
            Artwork.failure_retryable.is_(True),
            Artwork.attempts < max_attempts,
        ),
    )


def render_condition(signature: str, include_stale: bool) -> Any:
    """Artwork with a stored source and no current renditions (or renditions from other settings)."""
    condition = Artwork.status == ArtworkStatus.DOWNLOADED.value
    if include_stale:
        condition = or_(
            condition,
            and_(
                Artwork.status == ArtworkStatus.PROCESSED.value,
                or_(Artwork.render_signature.is_(None), Artwork.render_signature != signature),
            ),
        )
    return condition


def download_candidates(
    session: Session, scope: Scope, *, max_attempts: int, after_id: int = -1, limit: int = 200
) -> list[DownloadTask]:
    return select_as(
        session,
        DownloadTask,
        scope.clause(),
        download_condition(max_attempts),
        Artwork.storage_path.isnot(None),
        Artwork.id > after_id,
        limit=limit,
    )


def render_candidates(
    session: Session,
    scope: Scope,
    *,
    signature: str,
    include_stale: bool,
    after_id: int = -1,
    limit: int = 200,
) -> list[RenderTask]:
    return select_as(
        session,
        RenderTask,
        scope.clause(),
        render_condition(signature, include_stale),
        Artwork.source_format.isnot(None),
        Artwork.source_checksum.isnot(None),
        Artwork.id > after_id,
        limit=limit,
    )


def _work_conditions(max_attempts: int, signature: str) -> dict[str, Any]:
    """What discovery counts, by name: the condition a row meets to be counted under it."""
    return {
        "to_download": download_condition(max_attempts),
        "to_render": render_condition(signature, include_stale=False),
        "stale_renditions": and_(
            Artwork.status == ArtworkStatus.PROCESSED.value,
            or_(Artwork.render_signature.is_(None), Artwork.render_signature != signature),
        ),
        "failed_final": and_(
            Artwork.status == ArtworkStatus.FAILED.value,
            or_(Artwork.failure_retryable.is_(False), Artwork.attempts >= max_attempts),
        ),
        "gone": Artwork.status == ArtworkStatus.GONE.value,
        "processed": Artwork.status == ArtworkStatus.PROCESSED.value,
    }


def count_work(session: Session, scope: Scope, *, max_attempts: int, signature: str) -> dict[str, int]:
    """How much work a scope holds, for discovery metadata."""
    conditions = _work_conditions(max_attempts, signature)
    row = session.execute(
        select(*(func.count().filter(condition) for condition in conditions.values())).where(scope.clause())
    ).one()
    return {name: int(value or 0) for name, value in zip(conditions, row, strict=True)}


def count_work_by_partition(
    session: Session, scope: Scope, *, max_attempts: int, signature: str
) -> dict[tuple[str, str], dict[str, int]]:
    """`count_work` for each (content_type, shard) of the scope that holds artwork, in one query."""
    conditions = _work_conditions(max_attempts, signature)
    rows = session.execute(
        select(
            Artwork.content_type,
            Artwork.shard,
            *(func.count().filter(condition) for condition in conditions.values()),
        )
        .where(scope.clause(), Artwork.shard.isnot(None))
        .group_by(Artwork.content_type, Artwork.shard)
    ).all()
    return {
        # The shard is filtered to NOT NULL above.
        (row[0], cast(str, row[1])): {
            name: int(value or 0) for name, value in zip(conditions, row[2:], strict=True)
        }
        for row in rows
    }


def partitions_with_work(
    session: Session,
    *,
    max_attempts: int,
    signature: str | None = None,
    changed_since: datetime | None = None,
) -> set[tuple[str, str]]:
    """Partitions that hold artwork needing download (or, with a signature, re-rendering).

    Rows inserted without a layout count in the partition their item hashes to: the run requested
    for it places them first (`assign_missing_layout`), so this read changes nothing.
    """
    condition = or_(download_condition(max_attempts), render_condition(signature or "", include_stale=False))
    if signature is not None:
        condition = or_(condition, render_condition(signature, include_stale=True))
    changed = [Artwork.updated_at > changed_since] if changed_since is not None else []
    placed = select(Artwork.content_type, Artwork.shard).where(condition, Artwork.shard.isnot(None), *changed)
    partitions = {(kind, cast(str, shard)) for kind, shard in session.execute(placed.distinct())}
    unplaced = select(Artwork.content_type, Artwork.content_id).where(
        condition, Artwork.storage_path.is_(None), *changed
    )
    for content_type, content_id in session.execute(unplaced.distinct()):
        partitions.add((content_type, layout.shard_of(content_type, content_id)))
    return partitions


def latest_change(session: Session) -> datetime | None:
    """Newest artwork change (UTC); SQLite hands timestamps back without their zone."""
    latest = session.scalar(select(func.max(Artwork.updated_at)))
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return latest


def reset_failed(
    session: Session,
    *,
    cause: str | None = None,
    content_type: str | None = None,
    item: tuple[str, int] | None = None,
    include_gone: bool = False,
) -> int:
    """Send failed (and optionally gone) artwork back to pending with a fresh attempt budget."""
    statuses = [ArtworkStatus.FAILED.value] + ([ArtworkStatus.GONE.value] if include_gone else [])
    statement = update(Artwork).where(Artwork.status.in_(statuses))
    if item:
        statement = statement.where(Artwork.content_type == item[0], Artwork.content_id == item[1])
    if cause:
        statement = statement.where(Artwork.failure_cause == cause)
    if content_type:
        statement = statement.where(Artwork.content_type == content_type)
    result = session.execute(
        statement.values(
            status=ArtworkStatus.PENDING.value,
            attempts=0,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
            updated_at=datetime.now(UTC),
        )
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
