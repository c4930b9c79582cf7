"""Serve each near-duplicate cluster from its best member (DEDUP_NEAR_DUPLICATES=true, off by default:
a human may disagree with a hash), and undo that when the option is turned off again.

Folding points every other member's rendition rows at the best member's objects through the same
mechanism as exact deduplication (`catalog.sharing`): the rows name the best's keys, `shared` true,
so orphan cleanup keeps an object while any row names it and the hand-over moves it to an heir before
the best member writes over its own keys. Members keep their own source, placeholders and perceptual
hash (what they are), and only their renditions change; their own objects become orphans for cleanup.

Order inside a cluster: members that only share (a byte-identical member's objects) go first, so that
by the time that owner is folded nobody else names its keys; a member whose keys others outside the
cluster name is left alone. One transaction per member; the best's objects are checked (HEAD) first.

Unfolding gives every near-shared member (its rows name objects rendered from other source bytes) a
cleared render signature, so the next render stage renders it on its own, in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from tvdb_images.catalog import results, sharing
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.near_duplicates import Cluster, Member, find_clusters
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.results import StoredRendition
from tvdb_images.catalog.rows import select_as
from tvdb_images.storage import Bucket, ObjectStore


@dataclass
class NearFoldReport:
    dry_run: bool
    clusters: int = 0
    folded: int = 0  # members now served from their cluster's best member (a dry run: would be)
    skipped: int = 0  # changed meanwhile, other settings, shared by artwork outside the cluster
    bytes_released: int = 0  # the folded members' own renditions, now orphans for cleanup
    examples: list[str] = field(default_factory=list)


def fold_near_duplicates(
    catalog: Catalog, store: ObjectStore, *, dry_run: bool = False, clusters: list[Cluster] | None = None
) -> NearFoldReport:
    report = NearFoldReport(dry_run=dry_run)
    if clusters is None:
        with catalog.session() as session:
            clusters = find_clusters(session)
    for cluster in clusters:
        report.clusters += 1
        best = cluster.best
        with catalog.session() as session:
            kept = sharing.donor_renditions(
                session,
                best.artwork_id,
                source_checksum=best.source_checksum,
                signature=best.render_signature,
            )
        if not kept or any(store.head(Bucket.THUMBNAILS, r.storage_key) is None for r in kept):
            report.skipped += len(cluster.members) - 1
            continue
        keys = {r.storage_key for r in kept}
        ids = {m.artwork_id for m in cluster.members}
        others = [m for m in cluster.members if m.source_checksum != best.source_checksum]
        others.sort(key=lambda m: (m.rendition_bytes > 0, m.artwork_id))  # sharers before owners
        for member in others:
            with catalog.session() as session:
                released = _fold_one(session, member, best, kept, keys, ids, dry_run=dry_run)
            if released is None:
                report.skipped += 1
                continue
            report.folded += 1
            report.bytes_released += released
            if len(report.examples) < 20:
                report.examples.append(f"artwork {member.artwork_id} -> artwork {best.artwork_id}")
    return report


def _fold_one(
    session: Session,
    member: Member,
    best: Member,
    kept: list[StoredRendition],
    keys: set[str],
    cluster_ids: set[int],
    *,
    dry_run: bool,
) -> int | None:
    """Point one member at the best's renditions; the bytes of its own objects released, or None."""
    tasks = select_as(
        session,
        RenderTask,
        Artwork.id == member.artwork_id,
        Artwork.status == ArtworkStatus.PROCESSED.value,
        Artwork.source_checksum == member.source_checksum,
        Artwork.render_signature == best.render_signature,  # same settings: the same sizes and formats
        Artwork.stale_since.is_(None),
    )
    if not tasks:
        return None
    task = tasks[0]
    session.execute(select(Artwork.id).where(Artwork.id == task.artwork_id).with_for_update())
    rows = session.execute(
        select(ArtworkRendition.storage_key, ArtworkRendition.bytes, ArtworkRendition.shared).where(
            ArtworkRendition.artwork_id == task.artwork_id
        )
    ).all()
    if not rows or {key for key, _, _ in rows} <= keys:
        return None  # nothing recorded, or already served from the best
    own = [(key, size) for key, size, shared in rows if not shared]
    holders = sharing.holders_of(session, [key for key, _ in own], besides=[task.artwork_id])
    if holders and (not dry_run or any(h.artwork_id not in cluster_ids for h in holders)):
        return None  # others still name its objects: it stays their owner
    if not dry_run:
        current = sharing.donor_renditions(
            session, best.artwork_id, source_checksum=best.source_checksum, signature=best.render_signature
        )
        if {r.storage_key for r in current} != keys:
            return None  # the best changed since its objects were checked
        results.record_renditions(
            session,
            task,
            current,
            signature=best.render_signature,
            keep_formats=(),
            primary_format=sharing.primary_format_of(current, best.render_signature),
            keep_placeholders=True,  # its own picture's placeholders and perceptual hash
        )
        results.refresh_content_local_urls(session, [(task.content_type, task.content_id)])
    return sum(size for _, size in own)


def near_shared_members(session: Session) -> list[int]:
    """Artworks whose rows name an object another artwork rendered from other source bytes."""
    owner = aliased(ArtworkRendition)
    return list(
        session.scalars(
            select(ArtworkRendition.artwork_id)
            .join(owner, owner.storage_key == ArtworkRendition.storage_key)
            .where(
                ArtworkRendition.shared.is_(True),
                owner.shared.is_(False),
                owner.source_checksum != ArtworkRendition.source_checksum,
            )
            .distinct()
            .order_by(ArtworkRendition.artwork_id)
        )
    )


def unfold_near_duplicates(catalog: Catalog) -> int:
    """With the option off: every near-shared member is rendered again on its own by the next render
    stage (its rows stay, and serve, until that render records its own). Returns members marked."""
    with catalog.session() as session:
        members = near_shared_members(session)
        if members:
            session.execute(
                update(Artwork)
                .where(Artwork.id.in_(members), Artwork.status == ArtworkStatus.PROCESSED.value)
                .values(render_signature=None)
                .execution_options(synchronize_session=False)
            )
    return len(members)
