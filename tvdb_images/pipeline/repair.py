"""Objects the catalog references but storage has lost (deleted by hand, lost by the store), and
sending their artwork back to work so that the sync stores them again.

`catalog_objects_exist` and a sync's discovery (`missing_artwork` for partition runs, `sync_scope`
for one content item) run the same comparison, `find_missing`: the catalog's references are read
first, then the scope's prefixes are listed (one listing per covering prefix, never a HEAD per
object), so an object recorded during the listing cannot be taken for lost. What the check reports
missing is exactly what the next sync of that scope restores.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.partition_keys import key_partition
from tvdb_images.pipeline.settings import MIRROR_SIGNATURE
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import covering_prefixes, item_prefix, original_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferencedObject:
    """One object a catalog row points at: an artwork's stored source, or one of its renditions."""

    artwork_id: int
    status: str
    bucket: Bucket
    key: str
    rendition: tuple[str, str, str] | None = None  # (size, format, checksum) of a rendition row

    @property
    def is_source(self) -> bool:
        """Whether losing this object loses the source (a mirrored rendition *is* the source)."""
        return self.rendition is None or self.bucket is Bucket.ORIGINALS


def referenced_objects(session: Session, scope: Scope) -> list[ReferencedObject]:
    """Every stored source and every recorded rendition of the scope's artwork."""
    objects: list[ReferencedObject] = []
    for artwork_id, status, path, source_format in session.execute(
        select(Artwork.id, Artwork.status, Artwork.storage_path, Artwork.source_format).where(
            scope.clause(), Artwork.source_format.isnot(None), Artwork.storage_path.isnot(None)
        )
    ):
        objects.append(
            # Both columns are filtered to NOT NULL above.
            ReferencedObject(
                artwork_id, status, Bucket.ORIGINALS, original_key(cast(str, path), cast(str, source_format))
            )
        )
    for row in session.execute(
        select(
            Artwork.id,
            Artwork.status,
            ArtworkRendition.storage_key,
            ArtworkRendition.size,
            ArtworkRendition.format,
            ArtworkRendition.checksum,
            ArtworkRendition.render_signature,
        )
        .join(ArtworkRendition, ArtworkRendition.artwork_id == Artwork.id)
        .where(scope.clause())
    ):
        bucket = Bucket.ORIGINALS if row.render_signature == MIRROR_SIGNATURE else Bucket.THUMBNAILS
        objects.append(
            ReferencedObject(
                row.id, row.status, bucket, row.storage_key, (row.size, row.format, row.checksum)
            )
        )
    return objects


def requeue_missing(
    session: Session, missing: Mapping[int, Sequence[ReferencedObject]], *, now: datetime | None = None
) -> dict[str, int]:
    """Send processed artwork whose objects are gone back to work, in the caller's transaction.

    A lost source makes the artwork `pending` (download again, then render); lost renditions alone
    make it `downloaded` (render again from the stored source). Rows of lost renditions are deleted,
    so the API stops offering bytes nobody has; the renditions still stored keep being served until
    the render replaces them. Rows changed since they were read (a render recorded meanwhile) are
    left alone.
    """
    now = now or datetime.now(UTC)
    counts = {"redownload": 0, "rerender": 0, "rendition_rows_dropped": 0}
    for artwork_id, objects in sorted(missing.items()):
        if not objects or any(o.status != ArtworkStatus.PROCESSED.value for o in objects):
            continue
        for obj in objects:
            if obj.rendition is None:
                continue
            size, image_format, checksum = obj.rendition
            result = session.execute(
                delete(ArtworkRendition).where(
                    ArtworkRendition.artwork_id == artwork_id,
                    ArtworkRendition.size == size,
                    ArtworkRendition.format == image_format,
                    ArtworkRendition.storage_key == obj.key,
                    ArtworkRendition.checksum == checksum,
                )
            )
            counts["rendition_rows_dropped"] += int(cast(CursorResult[Any], result).rowcount or 0)
        source_lost = any(o.is_source for o in objects)
        status = ArtworkStatus.PENDING if source_lost else ArtworkStatus.DOWNLOADED
        result = session.execute(
            update(Artwork)
            .where(and_(Artwork.id == artwork_id, Artwork.status == ArtworkStatus.PROCESSED.value))
            .values(status=status.value, updated_at=now)
        )
        if cast(CursorResult[Any], result).rowcount:
            counts["redownload" if source_lost else "rerender"] += 1
    return counts


def missing_by_artwork(
    referenced: Iterable[ReferencedObject], present: Mapping[Bucket, set[str]]
) -> dict[int, list[ReferencedObject]]:
    """The referenced objects not among the `present` keys, grouped by artwork."""
    missing: dict[int, list[ReferencedObject]] = {}
    for obj in referenced:
        if obj.key not in present.get(obj.bucket, set()):
            missing.setdefault(obj.artwork_id, []).append(obj)
    return missing


@dataclass
class MissingObjects:
    """What one comparison of a scope's catalog references with its storage listing found."""

    referenced: int = 0
    referenced_by_partition: dict[tuple[str, str], int] = field(default_factory=dict)
    listed: int = 0
    prefixes: int = 0
    by_artwork: dict[int, list[ReferencedObject]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def keys(self) -> list[str]:
        """`bucket/key` of every missing object, sorted."""
        return sorted(f"{o.bucket.value}/{o.key}" for objects in self.by_artwork.values() for o in objects)


def scope_prefixes(scope: Scope) -> list[str] | None:
    """The storage prefixes that hold exactly a partition or item scope's keys; None for wider
    scopes (a whole content type, everything), which no sync lists."""
    if scope.partitions is not None:
        shards_by_type: dict[str, list[str]] = defaultdict(list)
        for content_type, shard in scope.partitions:
            shards_by_type[content_type].append(shard)
        return [p for ct, shards in sorted(shards_by_type.items()) for p in covering_prefixes(ct, shards)]
    if scope.item is not None:
        return [item_prefix(*scope.item) + "/"]
    return None


def find_missing(catalog: Catalog, store: ObjectStore, scope: Scope) -> MissingObjects:
    """Referenced objects of a partition or item scope that are not in storage (StorageError when
    storage cannot be listed)."""
    started = time.perf_counter()
    prefixes = scope_prefixes(scope)
    if prefixes is None:
        raise ValueError("find_missing needs a scope of partitions or one content item")
    with catalog.session() as session:
        referenced = referenced_objects(session, scope)
    present: dict[Bucket, set[str]] = {}
    listed = 0
    for bucket in {obj.bucket for obj in referenced}:
        keys = present.setdefault(bucket, set())
        for prefix in prefixes:
            for info in store.list(bucket, prefix):
                keys.add(info.key)
                listed += 1
    by_partition: dict[tuple[str, str], int] = defaultdict(int)
    for obj in referenced:
        by_partition[key_partition(obj.key)] += 1
    return MissingObjects(
        referenced=len(referenced),
        referenced_by_partition=dict(by_partition),
        listed=listed,
        prefixes=len(prefixes),
        by_artwork=missing_by_artwork(referenced, present),
        seconds=time.perf_counter() - started,
    )


LOST_COUNTS = ("objects_missing", "redownload", "rerender", "rendition_rows_dropped")


def requeue_lost_objects(
    catalog: Catalog, store: ObjectStore, scope: Scope
) -> dict[tuple[str, str], dict[str, int]]:
    """Discovery's repair step: find the scope's lost objects and send their artwork back to work.

    Returns the counts (`LOST_COUNTS`) for each partition that had lost objects; scopes that are
    neither partitions nor one item are not listed (nothing returned)."""
    if scope_prefixes(scope) is None:
        return {}
    found = find_missing(catalog, store, scope)
    by_partition: dict[tuple[str, str], dict[int, list[ReferencedObject]]] = defaultdict(dict)
    for artwork_id, objects in found.by_artwork.items():
        by_partition[key_partition(objects[0].key)][artwork_id] = objects
    counts: dict[tuple[str, str], dict[str, int]] = {}
    if by_partition:
        with catalog.session() as session:
            for partition, missing in sorted(by_partition.items()):
                counts[partition] = {"objects_missing": sum(len(objects) for objects in missing.values())}
                counts[partition].update(requeue_missing(session, missing))
        log.warning(
            "%d referenced objects are missing from storage (first: %s); requeued %d artworks to "
            "download again and %d to render again",
            sum(c["objects_missing"] for c in counts.values()),
            found.keys[0],
            sum(c["redownload"] for c in counts.values()),
            sum(c["rerender"] for c in counts.values()),
        )
    return counts
