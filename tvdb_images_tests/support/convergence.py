"""Hold the catalog and object storage to each other after a fault: what a converged sync looks like.

Converged means: every artwork ended `processed`, or `failed`/`gone` with a cause; every key the
catalog references exists (checked object by object with HEAD, sizes compared); and the objects
under the partitions' prefixes that nothing references are listed, so a test can check that orphan
cleanup removes exactly those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from tvdb_images.catalog import references
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import is_layout_key, partition_prefix

FINAL_STATUSES = {ArtworkStatus.PROCESSED.value, ArtworkStatus.FAILED.value, ArtworkStatus.GONE.value}


@dataclass
class Audit:
    statuses: dict[int, str] = field(default_factory=dict)
    unsettled: list[str] = field(default_factory=list)  # not in a final state, or failed without a cause
    referenced: int = 0
    missing: list[str] = field(default_factory=list)  # referenced by the catalog, absent or wrong in storage
    unreferenced: set[tuple[Bucket, str]] = field(default_factory=set)  # stored, referenced by nothing

    @property
    def processed(self) -> int:
        return sum(1 for status in self.statuses.values() if status == ArtworkStatus.PROCESSED.value)

    @property
    def failed(self) -> int:
        return len(self.statuses) - self.processed


def audit(catalog: Catalog, store: ObjectStore, partitions: Iterable[tuple[str, str]]) -> Audit:
    result = Audit()
    partitions = sorted(set(partitions))
    with catalog.session() as session:
        rows = session.scalars(
            select(Artwork).where(Scope(partitions=tuple(partitions)).clause()).order_by(Artwork.id)
        ).all()
        for row in rows:
            result.statuses[row.id] = row.status
            if row.status not in FINAL_STATUSES:
                result.unsettled.append(f"artwork {row.id} is {row.status}")
            elif row.status != ArtworkStatus.PROCESSED.value and not row.failure_cause:
                result.unsettled.append(f"artwork {row.id} is {row.status} without a cause")
            if row.status == ArtworkStatus.PROCESSED.value and not row.renditions:
                result.unsettled.append(f"artwork {row.id} is processed without renditions")
            expected: list[tuple[Bucket, str, int | None]] = [
                (Bucket.THUMBNAILS, rendition.storage_key, rendition.bytes) for rendition in row.renditions
            ]
            if row.original_key:
                expected.append((Bucket.ORIGINALS, row.original_key, row.file_size))
            for bucket, key, size in expected:
                result.referenced += 1
                info = store.head(bucket, key)
                if info is None:
                    result.missing.append(f"{bucket.value}/{key} (artwork {row.id}, {row.status})")
                elif size is not None and info.size != size:
                    result.missing.append(f"{bucket.value}/{key} has {info.size} bytes, catalog says {size}")
        referenced = {Bucket.ORIGINALS: set(), Bucket.THUMBNAILS: set()}
        for content_type, shard in partitions:
            originals, thumbnails = references.referenced_keys(session, content_type, shard)
            referenced[Bucket.ORIGINALS] |= originals
            referenced[Bucket.THUMBNAILS] |= thumbnails
    for content_type, shard in partitions:
        for bucket in Bucket:
            for obj in store.list(bucket, partition_prefix(content_type, shard)):
                if is_layout_key(obj.key) and obj.key not in referenced[bucket]:
                    result.unreferenced.add((bucket, obj.key))
    return result
