"""What the catalog references and holds: the keys orphan cleanup must keep, the paths a sync may
still write, whether a content item is known, and the checks' view of processed artwork.

Reads only: cleanup, the asset checks and the admin API call these, never to change a row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.sharing import shared_keys_under
from tvdb_images.catalog.signatures import FORMAT_SEPARATOR, MIRROR_SIGNATURE
from tvdb_images.storage import layout
from tvdb_images.storage.layout import SIZES


def referenced_keys(session: Session, content_type: str, shard: str) -> tuple[set[str], set[str]]:
    """Keys the catalog references in one partition: (originals bucket, thumbnails bucket), whichever
    artwork's row names them."""
    originals: set[str] = set()
    for path, source_format in session.execute(
        select(Artwork.storage_path, Artwork.source_format).where(
            Artwork.content_type == content_type,
            Artwork.shard == shard,
            Artwork.source_format.isnot(None),
        )
    ):
        if path and source_format:
            originals.add(layout.original_key(path, source_format))
    thumbnails = set(
        session.scalars(
            select(ArtworkRendition.storage_key)
            .join(Artwork, Artwork.id == ArtworkRendition.artwork_id)
            .where(Artwork.content_type == content_type, Artwork.shard == shard)
        )
    )
    # Objects of this partition that artwork elsewhere shares (an identical source rendered once).
    thumbnails |= shared_keys_under(session, layout.partition_prefix(content_type, shard))
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


@dataclass
class Completeness:
    """Processed artwork per partition, and the ids of those lacking sizes from their latest render."""

    processed: dict[tuple[str, str], int] = field(default_factory=dict)
    incomplete: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))


def processed_completeness(session: Session, scope: Scope) -> Completeness:
    """For each partition of `scope`: how many artworks are processed, and which of them lack
    renditions from their own latest render (all sizes, or the one mirrored source)."""
    # An artwork in several formats has a `+`-joined signature: one part per format, each the
    # signature its own renditions carry, and every size of each.
    joined = FORMAT_SEPARATOR + Artwork.render_signature + FORMAT_SEPARATOR
    size_count = (
        select(func.count())
        .where(
            ArtworkRendition.artwork_id == Artwork.id,
            or_(
                ArtworkRendition.render_signature == Artwork.render_signature,
                joined.contains(FORMAT_SEPARATOR + ArtworkRendition.render_signature + FORMAT_SEPARATOR),
            ),
        )
        .scalar_subquery()
    )
    parts = func.length(Artwork.render_signature) - func.length(
        func.replace(Artwork.render_signature, FORMAT_SEPARATOR, "")
    )
    expected = case((Artwork.render_signature == MIRROR_SIGNATURE, 1), else_=(parts + 1) * len(SIZES))
    processed_in_scope = (scope.clause(), Artwork.status == ArtworkStatus.PROCESSED.value)
    found = Completeness()
    for content_type, shard, count in session.execute(
        select(Artwork.content_type, Artwork.shard, func.count())
        .where(*processed_in_scope)
        .group_by(Artwork.content_type, Artwork.shard)
    ):
        found.processed[(content_type, cast(str, shard))] = count  # processed artwork has its shard
    for content_type, shard, artwork_id in session.execute(
        select(Artwork.content_type, Artwork.shard, Artwork.id)
        .where(*processed_in_scope, size_count < expected)
        .order_by(Artwork.id)
    ):
        found.incomplete[(content_type, cast(str, shard))].append(artwork_id)
    return found
