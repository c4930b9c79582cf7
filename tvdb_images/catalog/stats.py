"""Storage statistics computed from the catalog: cheap enough to ask often (one grouped query each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE


@dataclass
class StorageStats:
    total_objects: int = 0
    total_bytes: int = 0
    renditions: list[dict[str, Any]] = field(default_factory=list)  # by content type, size, format
    originals: list[dict[str, Any]] = field(default_factory=list)  # by content type
    artwork_by_status: list[dict[str, Any]] = field(default_factory=list)  # by content type, status
    failures_by_cause: dict[str, int] = field(default_factory=dict)
    # Exact deduplication: rendition rows naming an object another artwork's row already names
    # (an identical source rendered once), and the bytes a copy of each would have taken.
    shared_renditions: int = 0
    bytes_saved_by_dedup: int = 0
    # Of those, rows serving a near-duplicate's best member (DEDUP_NEAR_DUPLICATES): an object rendered
    # from other source bytes than the row's own.
    near_shared_renditions: int = 0
    bytes_saved_by_near_dedup: int = 0

    @property
    def total_size_mb(self) -> float:
        return round(self.total_bytes / (1024 * 1024), 3)


def storage_stats(session: Session) -> StorageStats:
    stats = StorageStats()
    rendition_rows = session.execute(
        select(
            Artwork.content_type,
            ArtworkRendition.size,
            ArtworkRendition.format,
            func.count(),
            func.coalesce(func.sum(ArtworkRendition.bytes), 0),
        )
        .join(Artwork, Artwork.id == ArtworkRendition.artwork_id)
        # A mirrored source (ENABLE_IMAGE_OPTIMIZATION=false) is the originals object counted below;
        # a shared row names an object counted once, under the artwork that rendered it.
        .where(ArtworkRendition.render_signature != MIRROR_SIGNATURE, ArtworkRendition.shared.is_(False))
        .group_by(Artwork.content_type, ArtworkRendition.size, ArtworkRendition.format)
        .order_by(Artwork.content_type, ArtworkRendition.size, ArtworkRendition.format)
    )
    for content_type, size, image_format, count, total in rendition_rows:
        stats.renditions.append(
            {
                "content_type": content_type,
                "size": size,
                "format": image_format,
                "objects": count,
                "bytes": int(total),
            }
        )
        stats.total_objects += count
        stats.total_bytes += int(total)
    original_rows = session.execute(
        select(Artwork.content_type, func.count(), func.coalesce(func.sum(Artwork.file_size), 0))
        .where(Artwork.source_format.isnot(None))
        .group_by(Artwork.content_type)
        .order_by(Artwork.content_type)
    )
    for content_type, count, stored in original_rows:
        stats.originals.append({"content_type": content_type, "objects": count, "bytes": int(stored or 0)})
        stats.total_objects += count
        stats.total_bytes += int(stored or 0)
    shared, saved = session.execute(
        select(func.count(), func.coalesce(func.sum(ArtworkRendition.bytes), 0)).where(
            ArtworkRendition.shared.is_(True)
        )
    ).one()
    stats.shared_renditions, stats.bytes_saved_by_dedup = int(shared), int(saved)
    owner = aliased(ArtworkRendition)
    near_shared, near_saved = session.execute(
        select(func.count(), func.coalesce(func.sum(ArtworkRendition.bytes), 0))
        .join(owner, (owner.storage_key == ArtworkRendition.storage_key) & owner.shared.is_(False))
        .where(ArtworkRendition.shared.is_(True), owner.source_checksum != ArtworkRendition.source_checksum)
    ).one()
    stats.near_shared_renditions, stats.bytes_saved_by_near_dedup = int(near_shared), int(near_saved)
    for content_type, status, count in session.execute(
        select(Artwork.content_type, Artwork.status, func.count())
        .group_by(Artwork.content_type, Artwork.status)
        .order_by(Artwork.content_type, Artwork.status)
    ):
        stats.artwork_by_status.append({"content_type": content_type, "status": status, "artworks": count})
    for cause, count in session.execute(
        select(Artwork.failure_cause, func.count())
        .where(Artwork.failure_cause.isnot(None))
        .group_by(Artwork.failure_cause)
        .order_by(Artwork.failure_cause)
    ):
        stats.failures_by_cause[cast(str, cause)] = count  # NULL causes are filtered out above
    return stats
