"""The catalog reads the serving API needs, returned as plain frozen records.

Records (not ORM rows) leave the connection before an image is sent, so no database connection is
held while a slow client downloads, and they can be cached. Which artwork an item's image URL serves
follows the catalog's primary rule (`tvdb_images.catalog.selection`: score, then language, then lowest
id), applied to the artwork that has stored renditions, the same choice that fills the content tables'
`local_*_url`.

The image path reads through `CatalogReader`: one SQL statement per lookup, on its own engine in
autocommit (no BEGIN/COMMIT round trips) and without a pre-ping per checkout; a connection the server
dropped is retried once on a fresh one instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, case, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from serving.conditional import content_version, strong_etag
from serving.links import artwork_image_path
from tvdb_images.catalog.db import create_catalog_engine
from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.results import StoredPlaceholders
from tvdb_images.catalog.selection import primary_order_by
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE
from tvdb_images.retrying import retrying
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SIZES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
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
    # Derived once when the record is read (records are cached): the strong ETag, the content version
    # of these bytes alone and the artwork URL pinned to them.
    etag: str
    version: str
    pinned_path: str


@dataclass(frozen=True, slots=True)
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
    # size -> content version of every format stored in that size: what a negotiated URL can send.
    size_versions: Mapping[str, str]
    # Set while the stored image no longer matches the source (STALE_IMAGE_POLICY=serve keeps it served).
    stale_since: datetime | None = None
    # What a client paints while the image loads; None until rendered with them (or mirrored unchanged).
    placeholders: StoredPlaceholders | None = None

    @property
    def stale(self) -> bool:
        return self.stale_since is not None and bool(self.renditions)

    def renditions_of(self, size: str) -> list[RenditionRecord]:
        return [r for r in self.renditions if r.size == size]

    @property
    def sizes(self) -> list[str]:
        stored = {r.size for r in self.renditions}
        return [size for size in SIZES if size in stored]


@dataclass(frozen=True, slots=True)
class ArtworkView:
    """An artwork and whether its item's image URL serves it (the metadata endpoint shows both)."""

    artwork: ArtworkRecord
    is_primary: bool


# The outer query reads aliases, so that the subqueries below (on the plain tables, as
# `primary_order_by` names them) correlate only where they say so.
_ARTWORK = Artwork.__table__.alias("a")
_RENDITION = ArtworkRendition.__table__.alias("r")
_ARTWORK_COLUMNS = [
    _ARTWORK.c[name]
    for name in (
        "id",
        "content_type",
        "content_id",
        "image_type",
        "language",
        "score",
        "source_url",
        "status",
        "failure_cause",
        "processed_at",
        "source_width",
        "source_height",
        "file_size",
        "stale_since",
        "thumbhash",
        "blurhash",
        "dominant_color",
    )
]
_RENDITION_COLUMNS = [
    _RENDITION.c[name].label(f"r_{name}")
    for name in (
        "size",
        "format",
        "render_signature",
        "storage_key",
        "width",
        "height",
        "bytes",
        "content_type",
        "checksum",
    )
]


def _has_renditions() -> Any:
    return exists().where(ArtworkRendition.artwork_id == Artwork.id)


def _with_renditions() -> Select[Any]:
    return select(*_ARTWORK_COLUMNS, *_RENDITION_COLUMNS).select_from(
        _ARTWORK.outerjoin(_RENDITION, _RENDITION.c.artwork_id == _ARTWORK.c.id)
    )


def _item_image_statement() -> Select[Any]:
    """The artwork an item's image URL serves, with its renditions, in one statement: the primary one
    among those stored, or, when none is stored yet, the primary one whatever its status (what a
    client would get once it is stored)."""
    chosen = (
        select(Artwork.id)
        .where(
            Artwork.content_type == bindparam("content_type"),
            Artwork.content_id == bindparam("content_id"),
            Artwork.image_type == bindparam("image_type"),
        )
        .order_by(case((_has_renditions(), 0), else_=1), *primary_order_by())
        .limit(1)
        .scalar_subquery()
    )
    return _with_renditions().where(_ARTWORK.c.id == chosen)


def _artwork_statement() -> Select[Any]:
    """One artwork with its renditions and whether it is its item's primary stored artwork."""
    primary_id = (
        select(Artwork.id)
        .where(
            Artwork.content_type == _ARTWORK.c.content_type,
            Artwork.content_id == _ARTWORK.c.content_id,
            Artwork.image_type == _ARTWORK.c.image_type,
            _has_renditions(),
        )
        .order_by(*primary_order_by())
        .limit(1)
        .scalar_subquery()
    )
    is_primary = (_ARTWORK.c.id == primary_id).label("is_primary")
    return _with_renditions().add_columns(is_primary).where(_ARTWORK.c.id == bindparam("artwork_id"))


# Built once: each execution then only binds its values (SQLAlchemy's compiled cache does the rest).
ITEM_IMAGE = _item_image_statement()
ARTWORK = _artwork_statement()


class CatalogReader:
    """Read-only catalog queries for the image and metadata endpoints."""

    def __init__(self, engine: Engine, *, owned: bool = False) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._owned = engine if owned else None

    @classmethod
    def for_url(cls, url: str, *, pool_size: int = 10) -> CatalogReader:
        return cls(create_catalog_engine(url, pool_size=pool_size, pool_pre_ping=False), owned=True)

    def item_image(self, content_type: str, content_id: int, image_type: str) -> ArtworkRecord | None:
        rows = self._rows(
            ITEM_IMAGE, {"content_type": content_type, "content_id": content_id, "image_type": image_type}
        )
        return _record(rows) if rows else None

    def artwork(self, artwork_id: int) -> ArtworkView | None:
        rows = self._rows(ARTWORK, {"artwork_id": artwork_id})
        return ArtworkView(_record(rows), bool(rows[0].is_primary)) if rows else None

    def dispose(self) -> None:
        if self._owned is not None:
            self._owned.dispose()

    def _rows(self, statement: Select[Any], values: dict[str, Any]) -> Sequence[Any]:
        return _RECONNECT(self._execute, statement, values)

    def _execute(self, statement: Select[Any], values: dict[str, Any]) -> Sequence[Any]:
        with self._engine.connect() as connection:
            return connection.execute(statement, values).all()


def _connection_dropped(exc: BaseException) -> bool:
    """The server closed a pooled connection (restart, failover, idle timeout): SQLAlchemy has
    invalidated the pool, so another try gets a fresh connection."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _log_reconnect(attempt: int, exc: BaseException, delay: float) -> None:
    log.warning("catalog connection was dropped (%s); retrying once", getattr(exc, "orig", exc))


# Tried again once, at once: a second drop in a row is an outage, answered 503.
_RECONNECT = retrying(attempts=2, retry_on=_connection_dropped, on_retry=_log_reconnect)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; the catalog stores UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _size_rank(size: str) -> int:
    return SIZES.index(size) if size in SIZES else len(SIZES)


def _record(rows: Sequence[Any]) -> ArtworkRecord:
    """An artwork from the rows of its outer join with its renditions (one row, with NULL rendition
    columns, when it has none)."""
    first = rows[0]
    renditions = [_rendition(first.id, row) for row in rows if row.r_size is not None]
    renditions.sort(key=lambda r: (_size_rank(r.size), r.format))
    checksums_by_size: dict[str, list[str]] = {}
    for rendition in renditions:
        checksums_by_size.setdefault(rendition.size, []).append(rendition.checksum)
    return ArtworkRecord(
        id=first.id,
        content_type=first.content_type,
        content_id=first.content_id,
        image_type=first.image_type,
        language=first.language,
        score=first.score,
        source_url=first.source_url,
        status=first.status,
        failure_cause=first.failure_cause,
        processed_at=_utc(first.processed_at),
        source_width=first.source_width,
        source_height=first.source_height,
        source_bytes=first.file_size,
        renditions=tuple(renditions),
        size_versions={size: content_version(checksums) for size, checksums in checksums_by_size.items()},
        stale_since=_utc(first.stale_since),
        placeholders=_placeholders(first) if renditions else None,
    )


def _placeholders(row: Any) -> StoredPlaceholders | None:
    if row.thumbhash is None or row.blurhash is None or row.dominant_color is None:
        return None
    return StoredPlaceholders(row.thumbhash, row.blurhash, row.dominant_color)


def _rendition(artwork_id: int, row: Any) -> RenditionRecord:
    size, image_format = sys.intern(row.r_size), sys.intern(row.r_format)
    version = content_version([row.r_checksum])
    return RenditionRecord(
        size=size,
        format=image_format,
        # With ENABLE_IMAGE_OPTIMIZATION=false the only "rendition" is the unchanged source.
        bucket=Bucket.ORIGINALS if row.r_render_signature == MIRROR_SIGNATURE else Bucket.THUMBNAILS,
        storage_key=row.r_storage_key,
        width=row.r_width,
        height=row.r_height,
        bytes=row.r_bytes,
        content_type=sys.intern(row.r_content_type),
        checksum=row.r_checksum,
        etag=strong_etag(row.r_checksum),
        version=version,
        pinned_path=artwork_image_path(artwork_id, size, image_format=image_format, version=version),
    )
