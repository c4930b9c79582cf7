"""Orphan cleanup: delete stored objects that no catalog row references any more.

Safe alongside a running sync: each partition's objects are listed *before* the catalog's references
are read, so an object a sync has recorded by then is kept; and an object younger than the grace
period is never deleted, which covers one written but not yet recorded. Keys outside the layout are
never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tvdb_images.catalog import work
from tvdb_images.catalog.db import Catalog
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import is_layout_key, partition_prefix


@dataclass
class CleanupReport:
    dry_run: bool
    partitions: int = 0
    objects_listed: int = 0
    objects_referenced: int = 0
    orphans_found: int = 0
    orphans_in_grace: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    foreign_keys_ignored: int = 0
    elapsed_seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def clean_orphans(
    catalog: Catalog,
    store: ObjectStore,
    partitions: Iterable[tuple[str, str]],
    *,
    grace: timedelta,
    dry_run: bool,
    now: datetime | None = None,
) -> CleanupReport:
    report = CleanupReport(dry_run=dry_run)
    started = time.perf_counter()
    for content_type, shard in partitions:
        report.partitions += 1
        prefix = partition_prefix(content_type, shard)
        listed = {bucket: list(store.list(bucket, prefix)) for bucket in Bucket}
        with catalog.session() as session:
            originals, thumbnails = work.referenced_keys(session, content_type, shard)
        referenced = {Bucket.ORIGINALS: originals, Bucket.THUMBNAILS: thumbnails}
        cutoff = (now or datetime.now(UTC)) - grace
        for bucket, objects in listed.items():
            doomed: list[str] = []
            for obj in objects:
                report.objects_listed += 1
                if obj.key in referenced[bucket]:
                    report.objects_referenced += 1
                    continue
                if not is_layout_key(obj.key):
                    report.foreign_keys_ignored += 1
                    continue
                report.orphans_found += 1
                if obj.last_modified > cutoff:
                    report.orphans_in_grace += 1
                    continue
                doomed.append(obj.key)
                report.bytes_freed += obj.size
                if len(report.examples) < 20:
                    report.examples.append(f"{bucket.value}/{obj.key}")
            if doomed and not dry_run:
                report.deleted += store.delete(bucket, doomed)
    report.elapsed_seconds = time.perf_counter() - started
    return report
