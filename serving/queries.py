"""The catalog reads the serving API needs, returned as plain frozen records.

Records (not ORM rows) leave the session before an image is streamed, so no database connection is
held while a slow client downloads. Which artwork an item's image URL serves follows the catalog's
primary rule (`tvdb_images.catalog.selection`: score, then language, then lowest id), applied to the
artwork that has stored renditions, the same choice that fills the content tables' `local_*_url`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, joinedload

from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition
from tvdb_images.catalog.selection import primary_order_by
from tvdb_images.pipeline.settings import MIRROR_SIGNATURE
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SIZES


@dataclass(frozen=True)
class RenditionRecord:
    size: str
    format: str
    bucket: Bucket
    storage_key: str
    width: int
    height: int
    bytes: int
    content_type: str
    checksum: str


@dataclass(frozen=True)
class ArtworkRecord:
    id: int
    content_type: str
    content_id: int
    image_type: str
    language: str | None
    score: int | None
    source_url: str
    status: str
    failure_cause: str | None
    processed_at: datetime | None
    source_width: int | None
    source_height: int | None
    source_bytes: int | None
    renditions: tuple[RenditionRecord, ...]

    def renditions_of(self, size: str) -> list[RenditionRecord]:
        return [r for r in self.renditions if r.size == size]

    @property
    def sizes(self) -> list[str]:
        stored = {r.size for r in self.renditions}
        return [size for size in SIZES if size in stored]


def _has_renditions() -> object:
    return exists().where(ArtworkRendition.artwork_id == Artwork.id)


def primary_stored_artwork(
    session: Session, content_type: str, content_id: int, image_type: str
) -> ArtworkRecord | None:
    """The artwork an item's image URL serves: the primary one among those with renditions."""
    row = (
        session.scalars(
            select(Artwork)
            .options(joinedload(Artwork.renditions))  # one round trip instead of two
            .where(
                Artwork.content_type == content_type,
                Artwork.content_id == content_id,
                Artwork.image_type == image_type,
                _has_renditions(),
            )
            .order_by(*primary_order_by())
            .limit(1)
        )
        .unique()
        .first()
    )
    return _record(row) if row is not None else None


def primary_artwork(
    session: Session, content_type: str, content_id: int, image_type: str
) -> ArtworkRecord | None:
    """The primary artwork whatever its status: what a client would get once it is stored."""
    row = session.scalars(
        select(Artwork)
        .where(
            Artwork.content_type == content_type,
            Artwork.content_id == content_id,
            Artwork.image_type == image_type,
        )
        .order_by(*primary_order_by())
        .limit(1)
    ).first()
    return _record(row) if row is not None else None


def artwork_by_id(session: Session, artwork_id: int) -> ArtworkRecord | None:
    row = session.get(Artwork, artwork_id, options=[joinedload(Artwork.renditions)])
    return _record(row) if row is not None else None


def is_primary(session: Session, artwork: ArtworkRecord) -> bool:
    chosen = session.scalar(
        select(Artwork.id)
        .where(
            Artwork.content_type == artwork.content_type,
            Artwork.content_id == artwork.content_id,
            Artwork.image_type == artwork.image_type,
            _has_renditions(),
        )
        .order_by(*primary_order_by())
        .limit(1)
    )
    return chosen == artwork.id


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


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; the catalog stores UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _record(row: Artwork) -> ArtworkRecord:
    return ArtworkRecord(
        id=row.id,
        content_type=row.content_type,
        content_id=row.content_id,
        image_type=row.image_type,
        language=row.language,
        score=row.score,
        source_url=row.source_url,
        status=row.status,
        failure_cause=row.failure_cause,
        processed_at=_utc(row.processed_at),
        source_width=row.source_width,
        source_height=row.source_height,
        source_bytes=row.file_size,
        renditions=tuple(
            RenditionRecord(
                size=r.size,
                format=r.format,
                # With ENABLE_IMAGE_OPTIMIZATION=false the only "rendition" is the unchanged source.
                bucket=Bucket.ORIGINALS if r.render_signature == MIRROR_SIGNATURE else Bucket.THUMBNAILS,
                storage_key=r.storage_key,
                width=r.width,
                height=r.height,
                bytes=r.bytes,
                content_type=r.content_type,
                checksum=r.checksum,
            )
            for r in sorted(
                row.renditions, key=lambda r: (SIZES.index(r.size) if r.size in SIZES else 99, r.format)
            )
        ),
    )
