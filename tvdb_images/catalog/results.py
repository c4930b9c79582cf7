"""Recording what a stage did: a stored source, a failed attempt, stored renditions, and the content
tables' local URLs that follow from them.

Every update that gives an artwork local URLs happens in one transaction, after its objects are
stored, so a catalog row never points at an object that is not there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from tvdb_images.catalog.importer import SOURCE_URL_COLUMNS
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.selection import primary_sort_key
from tvdb_images.storage.layout import SIZES


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
    render_signature: str | None = None  # its format's own signature; None: the artwork's signature


@dataclass(frozen=True)
class StoredPlaceholders:
    """What a client paints while the artwork loads, computed by the render (`imaging.placeholders`)."""

    thumbhash: str
    blurhash: str
    dominant_color: str
    # The pHash of the same pixels (signed, as stored), for near-duplicate clusters; None: not computed.
    perceptual_hash: int | None = None


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
    etag: str | None = None,
    last_modified: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record a stored source. With `source_url`, only if the row still has that URL: an import that
    changed it meanwhile keeps the row pending, so the new URL is downloaded by the next run.
    `etag`/`last_modified` are the origin's validators for these bytes, sent back on revalidation."""
    now = now or datetime.now(UTC)
    session.execute(
        update(Artwork)
        .where(_still_the_same_source(artwork_id, source_url))
        .values(
            status=ArtworkStatus.DOWNLOADED.value,
            source_etag=etag,
            source_last_modified=last_modified,
            source_checked_at=now,
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


def record_crop_windows(
    session: Session, artwork_id: int, windows: dict[str, tuple[int, int, int, int]]
) -> None:
    """Record where each crop rendition sits in the source (x, y, width, height), replacing the last
    render's windows; called in the transaction that records the renditions."""
    value = {
        name: {"x": x, "y": y, "width": width, "height": height}
        for name, (x, y, width, height) in windows.items()
    }
    session.execute(update(Artwork).where(Artwork.id == artwork_id).values(crop_windows=value or None))


def record_renditions(
    session: Session,
    task: RenderTask,
    renditions: Sequence[StoredRendition],
    *,
    signature: str,
    keep_formats: Collection[str] | None = None,
    primary_format: str | None = None,
    placeholders: StoredPlaceholders | None = None,
    keep_placeholders: bool = False,
    now: datetime | None = None,
) -> None:
    """Record stored renditions and give the artwork its local URLs, all in the caller's transaction.

    `keep_formats` names the formats whose recorded renditions stay beside the new ones (those of
    IMAGE_FORMATS that are already current): every other format's rows go, so a format dropped from
    the list leaves its objects to orphan cleanup. None keeps every format not recorded now. The
    artwork's local URLs are `primary_format`'s (the first listed), new or kept; by default the
    first rendition's format. Renditions of another source never stay.

    The placeholders are replaced with the renditions' (cleared when there are none, as for a mirror),
    unless `keep_placeholders` (nothing was rendered: a format dropped or the list reordered).

    An artwork removed from the catalog meanwhile records nothing (its objects are left to orphan
    cleanup); the row is locked first, so a removal cannot slip in between (PostgreSQL).
    """
    now = now or datetime.now(UTC)
    still_there = select(Artwork.id).where(Artwork.id == task.artwork_id).with_for_update()
    if session.scalar(still_there) is None:
        return
    recorded = {r.format for r in renditions}
    dropped = (
        ArtworkRendition.format.in_(recorded)
        if keep_formats is None
        else ArtworkRendition.format.not_in([f for f in keep_formats if f not in recorded])
    )
    session.execute(
        delete(ArtworkRendition).where(
            ArtworkRendition.artwork_id == task.artwork_id,
            or_(dropped, ArtworkRendition.source_checksum != task.source_checksum),
        )
    )
    if renditions:
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
                    "render_signature": r.render_signature or signature,
                    # An identical source's renditions, stored once under another artwork's path.
                    "shared": not r.storage_key.startswith(f"{task.storage_path}/"),
                    "created_at": now,
                }
                for r in renditions
            ],
        )
    image, thumbnail = _local_urls(session, task.artwork_id, primary_format or renditions[0].format)
    # The artwork becomes processed only if its URL did not change while it was rendered.
    session.execute(
        update(Artwork)
        .where(_still_the_same_source(task.artwork_id, task.source_url))
        .values(
            status=ArtworkStatus.PROCESSED.value,
            local_image_url=image,
            local_thumbnail_url=thumbnail,
            processed_at=now,
            render_signature=signature,
            stale_since=None,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
            **({} if keep_placeholders else _placeholder_columns(placeholders)),
        )
    )


def _placeholder_columns(placeholders: StoredPlaceholders | None) -> dict[str, str | int | None]:
    return {
        "thumbhash": placeholders.thumbhash if placeholders else None,
        "blurhash": placeholders.blurhash if placeholders else None,
        "dominant_color": placeholders.dominant_color if placeholders else None,
        "perceptual_hash": placeholders.perceptual_hash if placeholders else None,
    }


def _local_urls(session: Session, artwork_id: int, image_format: str) -> tuple[str | None, str | None]:
    """The seed's image and thumbnail URLs of an artwork: its `original` and `thumbnail` renditions in
    `image_format` (else its largest and smallest)."""
    urls = dict(
        session.execute(
            select(ArtworkRendition.size, ArtworkRendition.url).where(
                ArtworkRendition.artwork_id == artwork_id, ArtworkRendition.format == image_format
            )
        ).all()
    )
    ordered = [urls[size] for size in SIZES if size in urls]
    if not ordered:
        return None, None
    return urls.get("original", ordered[0]), urls.get("thumbnail", ordered[-1])


def ids_by_content_type(items: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """(content_type, content_id) pairs -> each type's ids, sorted and without repeats."""
    by_type: dict[str, set[int]] = defaultdict(set)
    for content_type, content_id in items:
        by_type[content_type].add(content_id)
    return {content_type: sorted(ids) for content_type, ids in by_type.items()}


def primary_artwork_values(
    session: Session, content_type: str, ids: Iterable[int], value: Any, *where: Any
) -> dict[tuple[int, str], Any]:
    """(content_id, image_type) -> `value` (a column) of that item's primary artwork of the type,
    among the artwork that meets `where`."""
    rows = session.execute(
        select(
            Artwork.content_id,
            Artwork.image_type,
            Artwork.score,
            Artwork.language,
            Artwork.id,
            value.label("value"),
        ).where(Artwork.content_type == content_type, Artwork.content_id.in_(list(ids)), *where)
    ).all()
    best: dict[tuple[int, str], Any] = {}
    for row in sorted(rows, key=lambda r: primary_sort_key(r.score, r.language, r.id)):
        best.setdefault((row.content_id, row.image_type), row.value)
    return best


def refresh_content_local_urls(session: Session, items: Iterable[tuple[str, int]]) -> None:
    """Point each item's `local_*_url` columns at its primary processed artwork of each type."""
    for content_type, ids in ids_by_content_type(items).items():
        best = primary_artwork_values(
            session,
            content_type,
            ids,
            Artwork.local_image_url,
            # Whatever the API serves: processed artwork, and the last good image of a stale one.
            Artwork.local_image_url.isnot(None),
            Artwork.image_type.in_(list(SOURCE_URL_COLUMNS)),
        )
        model = CONTENT_MODELS[content_type]
        columns = SOURCE_URL_COLUMNS.items()
        updates = [
            {"id": content_id}
            | {f"local_{column}": best.get((content_id, image_type)) for image_type, column in columns}
            for content_id in ids
        ]
        if updates:
            existing = set(session.scalars(select(model.id).where(model.id.in_(ids))))
            updates = [u for u in updates if u["id"] in existing]
            if updates:
                session.execute(update(model), updates)
