"""Perceptual hashes for artwork rendered before the render computed them: read each one's smallest
stored rendition (the `thumbnail`, the pixels a render hashes), decode it and record its hash.

Cheaper than re-rendering (one small GET and decode, no encode, no write to storage), and close to
what a render would record: the thumbnail's encoding moves a pHash by a bit or two at most. Rows whose
renditions or source changed meanwhile are left for the next pass (the update names the checksum).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select, update

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE
from tvdb_images.imaging.perceptual import perceptual_hash, to_signed
from tvdb_images.storage import Bucket, ObjectStore, StorageError

log = logging.getLogger(__name__)

SMALLEST = "thumbnail"


@dataclass
class BackfillReport:
    hashed: int = 0
    failed: int = 0  # no thumbnail object, or it did not decode: left for a re-render


def backfill_perceptual_hashes(
    catalog: Catalog, store: ObjectStore, *, limit: int = 10_000
) -> BackfillReport:
    """Hash up to `limit` processed artworks that have none, from their stored thumbnail."""
    report = BackfillReport()
    with catalog.session() as session:
        rows = session.execute(
            select(Artwork.id, Artwork.source_checksum, ArtworkRendition.storage_key)
            .join(ArtworkRendition, ArtworkRendition.artwork_id == Artwork.id)
            .where(
                Artwork.status == ArtworkStatus.PROCESSED.value,
                Artwork.perceptual_hash.is_(None),
                Artwork.render_signature != MIRROR_SIGNATURE,
                ArtworkRendition.size == SMALLEST,
                ArtworkRendition.source_checksum == Artwork.source_checksum,
            )
            .order_by(Artwork.id, ArtworkRendition.format)
        ).all()
    seen: set[int] = set()
    for artwork_id, checksum, key in rows:
        if artwork_id in seen or len(seen) >= limit:
            continue
        seen.add(artwork_id)
        try:
            with Image.open(io.BytesIO(store.get(Bucket.THUMBNAILS, key))) as image:
                value = to_signed(perceptual_hash(image))
        except (StorageError, UnidentifiedImageError, OSError) as exc:
            log.info("artwork %s: no perceptual hash from %s: %s", artwork_id, key, exc)
            report.failed += 1
            continue
        with catalog.session() as session:
            session.execute(
                update(Artwork)
                .where(
                    Artwork.id == artwork_id,
                    Artwork.source_checksum == checksum,
                    Artwork.perceptual_hash.is_(None),
                )
                .values(perceptual_hash=value)
            )
        report.hashed += 1
    return report
