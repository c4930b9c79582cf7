"""Catalog queries and updates the pipeline runs: what needs work, and recording what was done.

Every update that gives an artwork local URLs happens in one transaction, after its objects are
stored, so a catalog row never points at an object that is not there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, false, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tvdb_images.catalog.importer import SOURCE_URL_COLUMNS
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.selection import primary_sort_key
from tvdb_images.storage import layout


@dataclass(frozen=True)
class Scope:
    """Which artwork a run works on: Dagster partitions, one content item, or a content type."""

    partitions: tuple[tuple[str, str], ...] | None = None  # (content_type, shard)
    item: tuple[str, int] | None = None  # (content_type, content_id)
    content_type: str | None = None
    artwork_ids: tuple[int, ...] | None = None

    def clause(self) -> Any:
        clauses: list[Any] = []
        if self.partitions is not None:
            by_type: dict[str, list[str]] = defaultdict(list)
            for content_type, shard in self.partitions:
                by_type[content_type].append(shard)
            if not by_type:
                return false()
            clauses.append(
                or_(
                    *(
                        and_(Artwork.content_type == content_type, Artwork.shard.in_(sorted(shards)))
                        for content_type, shards in sorted(by_type.items())
                    )
                )
            )
        if self.item is not None:
            clauses.append(and_(Artwork.content_type == self.item[0], Artwork.content_id == self.item[1]))
        if self.content_type is not None:
            clauses.append(Artwork.content_type == self.content_type)
        if self.artwork_ids is not None:
            clauses.append(Artwork.id.in_(self.artwork_ids))
        return and_(*clauses) if clauses else Artwork.id.isnot(None)


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

    @property
    def original_key(self) -> str:
        return layout.original_key(self.storage_path, self.source_format)


@dataclass(frozen=True)
class StoredRendition:
    """A rendition whose object is already in storage, ready to be recorded."""

    size: str
    format: str
    storage_key: str
    url: str
    width: int
    height: int
    bytes: int
    content_type: str
    checksum: str


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
    rows = session.execute(
        select(
            Artwork.id,
            Artwork.content_type,
            Artwork.content_id,
            Artwork.source_url,
            Artwork.storage_path,
            Artwork.source_checksum,
            Artwork.source_format,
        )
        .where(
            scope.clause(),
            download_condition(max_attempts),
            Artwork.storage_path.isnot(None),
            Artwork.id > after_id,
        )
        .order_by(Artwork.id)
        .limit(limit)
    )
    return [DownloadTask(*row) for row in rows]


def render_candidates(
    session: Session,
    scope: Scope,
    *,
    signature: str,
    include_stale: bool,
    after_id: int = -1,
    limit: int = 200,
) -> list[RenderTask]:
    rows = session.execute(
        select(
            Artwork.id,
            Artwork.content_type,
            Artwork.content_id,
            Artwork.image_type,
            Artwork.storage_path,
            Artwork.source_format,
            Artwork.source_checksum,
            Artwork.source_width,
            Artwork.source_height,
            Artwork.source_url,
        )
        .where(
            scope.clause(),
            render_condition(signature, include_stale),
            Artwork.source_format.isnot(None),
            Artwork.source_checksum.isnot(None),
            Artwork.id > after_id,
        )
        .order_by(Artwork.id)
        .limit(limit)
    )
    return [RenderTask(*row) for row in rows]


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
        (row[0], row[1]): {name: int(value or 0) for name, value in zip(conditions, row[2:], strict=True)}
        for row in rows
    }


def partitions_with_work(
    session: Session,
    *,
    max_attempts: int,
    signature: str | None = None,
    changed_since: datetime | None = None,
) -> set[tuple[str, str]]:
    """Partitions that hold artwork needing download (or, with a signature, re-rendering)."""
    condition = or_(download_condition(max_attempts), render_condition(signature or "", include_stale=False))
    if signature is not None:
        condition = or_(condition, render_condition(signature, include_stale=True))
    statement = (
        select(Artwork.content_type, Artwork.shard).where(condition, Artwork.shard.isnot(None)).distinct()
    )
    if changed_since is not None:
        statement = statement.where(Artwork.updated_at > changed_since)
    return {(content_type, shard) for content_type, shard in session.execute(statement)}


def latest_change(session: Session) -> datetime | None:
    """Newest artwork change (UTC); SQLite hands timestamps back without their zone."""
    latest = session.scalar(select(func.max(Artwork.updated_at)))
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return latest


def record_download(
    session: Session,
    artwork_id: int,
    *,
    checksum: str,
    source_format: str,
    width: int,
    height: int,
    size: int,
    source_url: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record a stored source. With `source_url`, only if the row still has that URL: an import that
    changed it meanwhile keeps the row pending, so the new URL is downloaded by the next run."""
    now = now or datetime.now(UTC)
    session.execute(
        update(Artwork)
        .where(_still_the_same_source(artwork_id, source_url))
        .values(
            status=ArtworkStatus.DOWNLOADED.value,
            source_checksum=checksum,
            source_format=source_format,
            source_width=width,
            source_height=height,
            file_size=size,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
            attempts=Artwork.attempts + 1,
            last_attempt_at=now,
        )
    )


def _still_the_same_source(artwork_id: int, source_url: str | None) -> Any:
    if source_url is None:
        return Artwork.id == artwork_id
    return and_(Artwork.id == artwork_id, Artwork.source_url == source_url)


def record_failure(
    session: Session,
    artwork_id: int,
    *,
    cause: str,
    detail: str,
    retryable: bool,
    gone: bool = False,
    drop_source: bool = False,
    keep_status: bool = False,
    source_url: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record a failed attempt; `drop_source` forgets a stored source the caller has just deleted.

    `keep_status` records the cause but leaves the status alone: a render that failed on storage still
    has its source stored, so the artwork stays in the render queue and is not fetched again.
    """
    now = now or datetime.now(UTC)
    extra: dict[str, Any] = {"source_checksum": None, "source_format": None} if drop_source else {}
    if not keep_status:
        extra["status"] = (ArtworkStatus.GONE if gone else ArtworkStatus.FAILED).value
    session.execute(
        update(Artwork)
        .where(_still_the_same_source(artwork_id, source_url))
        .values(
            **extra,
            failure_cause=cause[:32],
            failure_detail=detail[:2000],
            failure_retryable=retryable and not gone,
            attempts=Artwork.attempts + 1,
            last_attempt_at=now,
        )
    )


def record_renditions(
    session: Session,
    task: RenderTask,
    renditions: Sequence[StoredRendition],
    *,
    signature: str,
    now: datetime | None = None,
) -> None:
    """Record stored renditions and give the artwork its local URLs, all in the caller's transaction."""
    now = now or datetime.now(UTC)
    formats = {r.format for r in renditions}
    session.execute(
        delete(ArtworkRendition).where(
            ArtworkRendition.artwork_id == task.artwork_id,
            or_(
                ArtworkRendition.format.in_(formats), ArtworkRendition.source_checksum != task.source_checksum
            ),
        )
    )
    session.execute(
        insert(ArtworkRendition),
        [
            {
                "artwork_id": task.artwork_id,
                "size": r.size,
                "format": r.format,
                "storage_key": r.storage_key,
                "url": r.url,
                "width": r.width,
                "height": r.height,
                "bytes": r.bytes,
                "content_type": r.content_type,
                "checksum": r.checksum,
                "source_checksum": task.source_checksum,
                "render_signature": signature,
                "created_at": now,
            }
            for r in renditions
        ],
    )
    by_size = {r.size: r for r in renditions}
    image = by_size.get("original") or renditions[0]
    thumbnail = by_size.get("thumbnail") or renditions[-1]
    # The artwork becomes processed only if its URL did not change while it was rendered.
    session.execute(
        update(Artwork)
        .where(_still_the_same_source(task.artwork_id, task.source_url))
        .values(
            status=ArtworkStatus.PROCESSED.value,
            local_image_url=image.url,
            local_thumbnail_url=thumbnail.url,
            processed_at=now,
            render_signature=signature,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
        )
    )


def refresh_content_local_urls(session: Session, items: Iterable[tuple[str, int]]) -> None:
    """Point each item's `local_*_url` columns at its primary processed artwork of each type."""
    by_type: dict[str, set[int]] = defaultdict(set)
    for content_type, content_id in items:
        by_type[content_type].add(content_id)
    for content_type, ids in by_type.items():
        rows = session.execute(
            select(
                Artwork.content_id,
                Artwork.image_type,
                Artwork.score,
                Artwork.language,
                Artwork.id,
                Artwork.local_image_url,
            ).where(
                Artwork.content_type == content_type,
                Artwork.content_id.in_(ids),
                Artwork.status == ArtworkStatus.PROCESSED.value,
                Artwork.image_type.in_(list(SOURCE_URL_COLUMNS)),
            )
        ).all()
        best: dict[tuple[int, str], Any] = {}
        for row in sorted(rows, key=lambda r: primary_sort_key(r.score, r.language, r.id)):
            best.setdefault((row.content_id, row.image_type), row)
        model = CONTENT_MODELS[content_type]
        updates = []
        for content_id in ids:
            values: dict[str, Any] = {"id": content_id}
            for image_type, column in SOURCE_URL_COLUMNS.items():
                chosen = best.get((content_id, image_type))
                values[f"local_{column}"] = chosen.local_image_url if chosen else None
            updates.append(values)
        if updates:
            existing = set(session.scalars(select(model.id).where(model.id.in_(ids))))
            updates = [u for u in updates if u["id"] in existing]
            if updates:
                session.execute(update(model), updates)


def referenced_keys(session: Session, content_type: str, shard: str) -> tuple[set[str], set[str]]:
    """Keys the catalog references in one partition: (originals bucket, thumbnails bucket)."""
    originals: set[str] = set()
    for path, source_format in session.execute(
        select(Artwork.storage_path, Artwork.source_format).where(
            Artwork.content_type == content_type,
            Artwork.shard == shard,
            Artwork.source_format.isnot(None),
        )
    ):
        if path:
            originals.add(layout.original_key(path, source_format))
    thumbnails = set(
        session.scalars(
            select(ArtworkRendition.storage_key)
            .join(Artwork, Artwork.id == ArtworkRendition.artwork_id)
            .where(Artwork.content_type == content_type, Artwork.shard == shard)
        )
    )
    return originals, thumbnails


def storage_paths_in_progress(session: Session, content_type: str, shard: str) -> set[str]:
    """Storage paths of a partition's artwork that a sync has yet to finish: pending, downloaded, or
    failed in a way a later run retries. A sync may write these artworks' keys again at any moment."""
    unfinished = or_(
        Artwork.status.in_([ArtworkStatus.PENDING.value, ArtworkStatus.DOWNLOADED.value]),
        and_(Artwork.status == ArtworkStatus.FAILED.value, Artwork.failure_retryable.is_(True)),
    )
    return set(
        session.scalars(
            select(Artwork.storage_path).where(
                Artwork.content_type == content_type,
                Artwork.shard == shard,
                unfinished,
                Artwork.storage_path.isnot(None),
            )
        )
    )


def content_item_exists(session: Session, content_type: str, content_id: int) -> bool:
    """An item is known if its content table has it or any artwork row points at it."""
    model = CONTENT_MODELS[content_type]
    if session.scalar(select(model.id).where(model.id == content_id)) is not None:
        return True
    return (
        session.scalar(
            select(Artwork.id)
            .where(Artwork.content_type == content_type, Artwork.content_id == content_id)
            .limit(1)
        )
        is not None
    )


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
    return int(result.rowcount or 0)
