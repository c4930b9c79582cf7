"""Renditions shared between artworks with identical sources: finding a donor, recording a share, and
handing a shared set over when the artwork whose path holds it is about to write there again.

An artwork whose source bytes (sha256) and render signature match an artwork already processed records
that artwork's rendition rows (same storage keys and URLs, `shared` true) instead of rendering. The
objects stay under the path of the artwork that rendered them; orphan cleanup keeps an object while any
row names its key (`shared_keys_under`), so it goes exactly when its last reference does.

Locking (PostgreSQL): a share locks its donor's row `FOR SHARE` and re-reads it, so a donor whose
source is changing (`record_download` updates that row) is never shared from; a hand-over locks every
holder's row `FOR UPDATE` until it has repointed them, so no share copies a key being moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from tvdb_images.catalog import results
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.results import StoredRendition
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE, split_signature


@dataclass(frozen=True)
class Holder:
    """A rendition row of some artwork that names a key."""

    artwork_id: int
    content_type: str
    content_id: int
    storage_path: str
    size: str
    format: str
    storage_key: str


@dataclass(frozen=True)
class Move:
    """A shared object copied to its heir's own key: rows naming `old_key` now name `new_key`."""

    old_key: str
    new_key: str
    new_url: str
    heir_id: int


def _donor_condition(source_checksum: str, signature: str) -> tuple[ColumnElement[bool], ...]:
    return (
        Artwork.status == ArtworkStatus.PROCESSED.value,
        Artwork.source_checksum == source_checksum,
        Artwork.render_signature == signature,
        Artwork.stale_since.is_(None),
    )


def find_donor(session: Session, *, source_checksum: str, signature: str, artwork_id: int) -> int | None:
    """Another artwork processed from the same source bytes with the same settings, if any."""
    if signature == MIRROR_SIGNATURE:
        return None  # a mirrored source is its own artwork's original: nothing to share
    has_renditions = (
        select(ArtworkRendition.artwork_id)
        .where(
            ArtworkRendition.artwork_id == Artwork.id,
            ArtworkRendition.source_checksum == source_checksum,
        )
        .exists()
    )
    return session.scalar(
        select(Artwork.id)
        .where(Artwork.id != artwork_id, *_donor_condition(source_checksum, signature), has_renditions)
        .order_by(Artwork.id)
        .limit(1)
    )


def donor_renditions(
    session: Session, donor_id: int, *, source_checksum: str, signature: str
) -> list[StoredRendition]:
    """The donor's current renditions, its row locked FOR SHARE and re-read; [] if it no longer fits."""
    still = session.scalar(
        select(Artwork.id)
        .where(Artwork.id == donor_id, *_donor_condition(source_checksum, signature))
        .with_for_update(read=True)
    )
    if still is None:
        return []
    rows = session.scalars(
        select(ArtworkRendition)
        .where(
            ArtworkRendition.artwork_id == donor_id,
            ArtworkRendition.source_checksum == source_checksum,
        )
        .order_by(ArtworkRendition.format, ArtworkRendition.size)
    ).all()
    return [
        StoredRendition(
            size=r.size,
            format=r.format,
            storage_key=r.storage_key,
            url=r.url,
            width=r.width,
            height=r.height,
            bytes=r.bytes,
            content_type=r.content_type,
            checksum=r.checksum,
            render_signature=r.render_signature,  # its format's own signature, so partial rerenders work
        )
        for r in rows
    ]


def record_shared(
    session: Session,
    task: RenderTask,
    donor_id: int,
    *,
    signature: str,
    primary_format: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Give `task`'s artwork the donor's renditions, in the caller's transaction. False (nothing
    recorded; the artwork stays in the render queue) if the donor changed since it was found."""
    renditions = donor_renditions(
        session, donor_id, source_checksum=task.source_checksum, signature=signature
    )
    if not renditions:
        return False
    results.record_renditions(
        session,
        task,
        renditions,
        signature=signature,
        keep_formats=(),  # the donor's renditions are every listed format: none of the sharer's stay
        primary_format=primary_format or primary_format_of(renditions, signature),
        placeholders=donor_placeholders(session, donor_id),
        now=now,
    )
    return True


def donor_placeholders(session: Session, donor_id: int) -> results.StoredPlaceholders | None:
    """The donor's placeholders: identical source bytes give identical placeholders."""
    row = session.execute(
        select(Artwork.thumbhash, Artwork.blurhash, Artwork.dominant_color, Artwork.perceptual_hash).where(
            Artwork.id == donor_id
        )
    ).one_or_none()
    if row is None or row.thumbhash is None or row.blurhash is None or row.dominant_color is None:
        return None
    return results.StoredPlaceholders(row.thumbhash, row.blurhash, row.dominant_color, row.perceptual_hash)


def shares_objects(session: Session, artwork_id: int) -> bool:
    """Whether any of the artwork's rendition rows names another artwork's object."""
    return (
        session.scalar(
            select(ArtworkRendition.artwork_id)
            .where(ArtworkRendition.artwork_id == artwork_id, ArtworkRendition.shared.is_(True))
            .limit(1)
        )
        is not None
    )


def holders_of(session: Session, keys: Iterable[str], *, besides: Iterable[int] = ()) -> list[Holder]:
    """Rendition rows naming any of `keys`, of artworks other than `besides`, lowest artwork id first."""
    keys = list(keys)
    if not keys:
        return []
    rows = session.execute(
        select(
            ArtworkRendition.artwork_id,
            Artwork.content_type,
            Artwork.content_id,
            Artwork.storage_path,
            ArtworkRendition.size,
            ArtworkRendition.format,
            ArtworkRendition.storage_key,
        )
        .join(Artwork, Artwork.id == ArtworkRendition.artwork_id)
        .where(ArtworkRendition.storage_key.in_(keys), ArtworkRendition.artwork_id.notin_(list(besides)))
        .order_by(ArtworkRendition.artwork_id, ArtworkRendition.storage_key)
    ).all()
    return [Holder(**row._mapping) for row in rows]


def lock_holders(session: Session, keys: Sequence[str], *, besides: int) -> list[Holder]:
    """Lock the rows of every artwork holding `keys` until none is added meanwhile; the final holders."""
    locked: set[int] = set()
    while True:
        holders = holders_of(session, keys, besides=[besides])
        new = {h.artwork_id for h in holders} - locked
        if not new:
            return holders
        session.execute(select(Artwork.id).where(Artwork.id.in_(sorted(new))).with_for_update())
        locked |= new


def repoint(session: Session, moves: Sequence[Move], *, besides: int) -> None:
    """Rows (of artworks other than `besides`) naming a moved key name its new one; local URLs follow."""
    items: set[tuple[str, int]] = set()
    for move in moves:
        old_urls = set(
            session.scalars(
                select(ArtworkRendition.url).where(
                    ArtworkRendition.storage_key == move.old_key, ArtworkRendition.artwork_id != besides
                )
            )
        )
        session.execute(
            update(ArtworkRendition)
            .where(ArtworkRendition.storage_key == move.old_key, ArtworkRendition.artwork_id != besides)
            .values(
                storage_key=move.new_key,
                url=move.new_url,
                shared=ArtworkRendition.artwork_id != move.heir_id,
            )
        )
        for column in (Artwork.local_image_url, Artwork.local_thumbnail_url):
            session.execute(
                update(Artwork)
                .where(column.in_(old_urls), Artwork.id != besides)
                .values({column.key: move.new_url})
                .execution_options(synchronize_session=False)
            )
        items |= {
            (row.content_type, row.content_id)
            for row in session.execute(
                select(Artwork.content_type, Artwork.content_id)
                .join(ArtworkRendition, ArtworkRendition.artwork_id == Artwork.id)
                .where(ArtworkRendition.storage_key == move.new_key)
            )
        }
    results.refresh_content_local_urls(session, items)


def shared_keys_under(session: Session, prefix: str) -> set[str]:
    """Keys under `prefix` that rows of *any* artwork share (through the partial index on `shared`)."""
    return set(
        session.scalars(
            select(ArtworkRendition.storage_key).where(
                ArtworkRendition.shared.is_(True),
                ArtworkRendition.storage_key.startswith(prefix, autoescape=True),
            )
        )
    )


def primary_format_of(renditions: Sequence[StoredRendition], signature: str) -> str | None:
    """The first listed format of an artwork signature (its local URLs' format), found by the
    renditions' own per-format signatures; None (the first rendition's) if none matches."""
    listed = split_signature(signature)
    if not listed:
        return None
    for r in renditions:
        if r.render_signature == listed[0]:
            return r.format
    return None
