"""Fold already-stored duplicates together (`tvdb-images storage dedup`): artwork processed from identical
source bytes with identical settings before sharing existed each hold their own copy of the same
renditions. Each group keeps one copy (its lowest-id member's); the others' rows are repointed to it.

No moment where a catalog URL names a missing object: the keeper's objects are checked (HEAD) before a
member is repointed, in one transaction per member, and a member's own objects are not deleted here:
once no row names them, orphan cleanup deletes them after its grace period, as any orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tvdb_images.catalog import results, sharing
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.rows import select_as
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE
from tvdb_images.storage import Bucket, ObjectStore


@dataclass
class FoldReport:
    dry_run: bool
    groups: int = 0  # sets of artwork with identical sources and settings, each with 2+ members
    folded: int = 0  # members now sharing their keeper's renditions (a dry run: would be)
    skipped: int = 0  # members left alone: changed meanwhile, shared by others, or keeper objects missing
    objects_released: int = 0  # the folded members' own objects, now orphans for cleanup
    bytes_released: int = 0
    examples: list[str] = field(default_factory=list)


def fold_duplicates(catalog: Catalog, store: ObjectStore, *, dry_run: bool) -> FoldReport:
    report = FoldReport(dry_run=dry_run)
    with catalog.session() as session:
        groups = _duplicate_groups(session)
    for (checksum, signature), ids in groups:
        report.groups += 1
        keeper, *members = ids
        with catalog.session() as session:
            kept = sharing.donor_renditions(session, keeper, source_checksum=checksum, signature=signature)
        if not kept or any(store.head(Bucket.THUMBNAILS, r.storage_key) is None for r in kept):
            report.skipped += len(members)
            continue
        for member in members:
            with catalog.session() as session:
                released = _fold_one(session, member, keeper, checksum, signature, dry_run=dry_run)
            if released is None:
                report.skipped += 1
                continue
            report.folded += 1
            report.objects_released += released[0]
            report.bytes_released += released[1]
            if len(report.examples) < 20:
                report.examples.append(f"artwork {member} -> artwork {keeper}")
    return report


def _duplicate_groups(session: Session) -> list[tuple[tuple[str, str], list[int]]]:
    """(source_checksum, render_signature) -> ids, lowest first, for groups of 2+ processed artwork."""
    eligible = (
        Artwork.status == ArtworkStatus.PROCESSED.value,
        Artwork.source_checksum.isnot(None),
        Artwork.render_signature.isnot(None),
        Artwork.render_signature != MIRROR_SIGNATURE,
        Artwork.stale_since.is_(None),
    )
    keys = (
        select(Artwork.source_checksum, Artwork.render_signature)
        .where(*eligible)
        .group_by(Artwork.source_checksum, Artwork.render_signature)
        .having(func.count() > 1)
        .subquery()
    )
    grouped: dict[tuple[str, str], list[int]] = {}
    for checksum, signature, artwork_id in session.execute(
        select(Artwork.source_checksum, Artwork.render_signature, Artwork.id)
        .join(
            keys,
            (keys.c.source_checksum == Artwork.source_checksum)
            & (keys.c.render_signature == Artwork.render_signature),
        )
        .where(*eligible)
        .order_by(Artwork.source_checksum, Artwork.render_signature, Artwork.id)
    ):
        grouped.setdefault((str(checksum), str(signature)), []).append(artwork_id)
    return list(grouped.items())


def _fold_one(
    session: Session, member: int, keeper: int, checksum: str, signature: str, *, dry_run: bool
) -> tuple[int, int] | None:
    """Repoint one member at the keeper's renditions; (objects, bytes) it no longer needs, or None."""
    tasks = select_as(
        session,
        RenderTask,
        Artwork.id == member,
        Artwork.status == ArtworkStatus.PROCESSED.value,
        Artwork.source_checksum == checksum,
        Artwork.render_signature == signature,
    )
    if not tasks:
        return None
    task = tasks[0]
    session.execute(select(Artwork.id).where(Artwork.id == member).with_for_update())
    own = session.execute(
        select(ArtworkRendition.storage_key, ArtworkRendition.bytes).where(
            ArtworkRendition.artwork_id == member,
            ArtworkRendition.source_checksum == checksum,
            ArtworkRendition.shared.is_(False),
        )
    ).all()
    if not own:
        return None  # already shares
    if sharing.holders_of(session, [key for key, _ in own], besides=[member]):
        return None  # others share this member's objects: it stays their owner
    kept = sharing.donor_renditions(session, keeper, source_checksum=checksum, signature=signature)
    if not kept or not _sizes_of(session, member, checksum) <= {(r.size, r.format) for r in kept}:
        return None
    if not dry_run:
        results.record_renditions(
            session,
            task,
            kept,
            signature=signature,
            keep_formats=(),
            primary_format=sharing.primary_format_of(kept, signature),
            placeholders=sharing.donor_placeholders(session, keeper),
        )
        results.refresh_content_local_urls(session, [(task.content_type, task.content_id)])
    return len(own), sum(size for _, size in own)


def _sizes_of(session: Session, artwork_id: int, checksum: str) -> set[tuple[str, str]]:
    return set(
        session.execute(
            select(ArtworkRendition.size, ArtworkRendition.format).where(
                ArtworkRendition.artwork_id == artwork_id, ArtworkRendition.source_checksum == checksum
            )
        ).all()
    )
