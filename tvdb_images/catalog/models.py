"""The catalog schema: content tables a TVDB proxy already has, and one `artwork` row per TVDB artwork.

Column names follow the seed (`local_image_url`, `storage_path`, `processed_at`, `file_size`, ...) so a
user's own proxy database can match them. Schema changes go through Alembic migrations only.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tvdb_images.storage import layout

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ArtworkStatus(enum.StrEnum):
    """Where an artwork is in the pipeline; stored as text so operators can query it by hand."""

    PENDING = "pending"  # needs its source downloaded (new, changed URL, or retry due)
    DOWNLOADED = "downloaded"  # source bytes stored in the originals bucket; renditions not yet
    PROCESSED = "processed"  # every rendition stored and its URLs recorded
    FAILED = "failed"  # last attempt failed; `failure_cause` says why, `failure_retryable` if a rerun helps
    GONE = "gone"  # the source answered 404/410; not retried until its URL changes


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ContentMixin:
    """Columns every content table shares: TVDB id, name, source URLs and the seed's local URLs."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    poster_url: Mapped[str | None] = mapped_column(Text)
    banner_url: Mapped[str | None] = mapped_column(Text)
    fanart_url: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    local_image_url: Mapped[str | None] = mapped_column(Text)
    local_poster_url: Mapped[str | None] = mapped_column(Text)
    local_banner_url: Mapped[str | None] = mapped_column(Text)
    local_fanart_url: Mapped[str | None] = mapped_column(Text)
    local_thumbnail_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()


class Series(ContentMixin, Base):
    __tablename__ = "series"


class Movie(ContentMixin, Base):
    __tablename__ = "movies"


class Episode(ContentMixin, Base):
    __tablename__ = "episodes"


class Season(ContentMixin, Base):
    __tablename__ = "seasons"


class Person(ContentMixin, Base):
    __tablename__ = "people"


CONTENT_MODELS: dict[str, type[ContentMixin]] = {
    "series": Series,
    "movies": Movie,
    "episodes": Episode,
    "seasons": Season,
    "people": Person,
}


class Artwork(Base):
    """One TVDB artwork and everything the pipeline knows about its local copy."""

    __tablename__ = "artwork"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    content_type: Mapped[str] = mapped_column(String(16), nullable=False)
    content_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    image_type: Mapped[str] = mapped_column(String(32), nullable=False)
    source_url: Mapped[str] = mapped_column(Text, nullable=False)
    language: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)

    # The storage shard (first two hex digits of the layout hash): with content_type, the partition.
    # Both are filled in by the importer, or by discovery for rows a proxy inserted on its own.
    shard: Mapped[str | None] = mapped_column(String(2))
    # Key prefix of this artwork's objects, `{content_type}/{h0}/{h1}/{content_id}/{image_type}[/{id}]`.
    storage_path: Mapped[str | None] = mapped_column(Text)
    local_image_url: Mapped[str | None] = mapped_column(Text)
    local_thumbnail_url: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    file_size: Mapped[int | None] = mapped_column(BigInteger)  # bytes of the downloaded source

    status: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=ArtworkStatus.PENDING.value,
        server_default=ArtworkStatus.PENDING.value,
    )
    failure_cause: Mapped[str | None] = mapped_column(String(32))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    failure_retryable: Mapped[bool] = mapped_column(default=False, server_default=false(), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    source_checksum: Mapped[str | None] = mapped_column(String(64))  # sha256 of the source bytes
    source_format: Mapped[str | None] = mapped_column(String(8))
    source_width: Mapped[int | None] = mapped_column(Integer)
    source_height: Mapped[int | None] = mapped_column(Integer)
    render_signature: Mapped[str | None] = mapped_column(String(255))  # per-format ones joined by "+"
    # Placeholders of the stored renditions, from the render (`imaging.placeholders`); none before it.
    thumbhash: Mapped[str | None] = mapped_column(String(64))  # base64, ~25 bytes
    blurhash: Mapped[str | None] = mapped_column(String(200))  # base83, at most 166 characters
    dominant_color: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb"
    # 64-bit pHash of the same pixels (`imaging.perceptual`, stored signed): near-duplicate clusters
    # (`catalog.near_duplicates`) compare it by Hamming distance. None before a render computed it.
    perceptual_hash: Mapped[int | None] = mapped_column(BigInteger)

    # The origin's validators for the stored source (sent back as If-None-Match / If-Modified-Since
    # when the source is revalidated) and when the origin last confirmed or supplied it.
    source_etag: Mapped[str | None] = mapped_column(Text)
    source_last_modified: Mapped[str | None] = mapped_column(Text)
    source_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while the stored image no longer matches what the row's source names (its URL changed, or the
    # origin now serves other bytes), cleared when renditions of the current source are recorded. An
    # artwork with renditions and a `stale_since` is served as the last good image, marked stale.
    stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where each crop rendition (CROP_RENDITIONS) sits in the upright source, so a client can reproduce
    # it: {"card": {"x": 620, "y": 0, "width": 600, "height": 900}, ...}; None without crops.
    crop_windows: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON)

    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()

    renditions: Mapped[list[ArtworkRendition]] = relationship(
        back_populates="artwork",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ArtworkRendition.size",
    )

    __table_args__ = (
        UniqueConstraint("storage_path"),
        Index("ix_artwork_partition_status", "content_type", "shard", "status"),
        Index("ix_artwork_content", "content_type", "content_id", "image_type"),
        Index("ix_artwork_updated_at", "updated_at"),
        Index("ix_artwork_source_checked_at", "content_type", "shard", "source_checked_at"),
    )

    @property
    def original_key(self) -> str | None:
        """Key of the unchanged source bytes in the originals bucket, once downloaded."""
        if not self.source_format or not self.storage_path:
            return None
        return layout.original_key(self.storage_path, self.source_format)


class ArtworkRendition(Base):
    """One stored size of one artwork in one format; its row exists only once the object is stored."""

    __tablename__ = "artwork_renditions"

    artwork_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("artwork.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[str] = mapped_column(String(16), primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)
    storage_key: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    content_type: Mapped[str] = mapped_column(String(32), nullable=False)
    checksum: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256: the serving API's ETag
    # Which source bytes this was rendered from: renditions of an older source are replaced, never mixed.
    source_checksum: Mapped[str] = mapped_column(String(64), nullable=False)
    render_signature: Mapped[str] = mapped_column(String(64), nullable=False)
    # True when `storage_key` lies under another artwork's storage path: an identical source rendered
    # once and shared (catalog/sharing.py). Orphan cleanup finds these references by key prefix.
    shared: Mapped[bool] = mapped_column(default=False, server_default=false(), nullable=False)
    created_at: Mapped[datetime] = _now_column()

    artwork: Mapped[Artwork] = relationship(back_populates="renditions")

    __table_args__ = (
        Index("ix_artwork_renditions_storage_key", "storage_key"),
        Index(
            "ix_artwork_renditions_shared_key",
            "storage_key",
            postgresql_where=text("shared"),
            postgresql_ops={"storage_key": "text_pattern_ops"},
            sqlite_where=text("shared"),
        ),
        Index("ix_artwork_renditions_dedup", "source_checksum", "render_signature"),
    )


class ArtworkViewCount(Base):
    """Views of one artwork's size on one UTC day, added to by the serving API's batched flushes
    (tvdb_images.catalog.views). No foreign key: a flush must not fail on an artwork removed since."""

    __tablename__ = "artwork_views"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    artwork_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    size: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_artwork_views_artwork_id", "artwork_id"),)


class ArtworkViewFlush(Base):
    """One serving worker's flush watermark for one day: every view it counted before `flushed_through`
    is in `artwork_views`. A day is complete once each worker that counted on it flushed past its end,
    or stopped cleanly (`stopped`: its final flush at shutdown landed)."""

    __tablename__ = "artwork_view_flushes"

    worker: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(BigInteger, nullable=False)  # this worker's views of the day
    dropped: Mapped[int] = mapped_column(BigInteger, nullable=False)  # not counted: the counter was full
    flushed_through: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stopped: Mapped[bool] = mapped_column(Boolean, nullable=False)


class ArtworkStatusCount(Base):
    """A delta of the artwork count of one (content_type, status, failure_cause) group, appended by
    triggers on `artwork` (migration 0007) and compacted by `catalog.status_counts.fold`: the sum
    per group is the count, read without scanning the artwork table."""

    __tablename__ = "artwork_status_counts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    content_type: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    failure_cause: Mapped[str | None] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
