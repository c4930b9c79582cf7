"""Orphan cleanup: delete stored objects that no catalog row references any more.

Safe alongside a running sync: each partition's objects are listed *before* the catalog's references
are read, so an object a sync has recorded by then is kept; and an object younger than the grace
period is never deleted, which covers one written but not yet recorded. Objects under the storage
path of an artwork that still has work in progress (pending, downloaded, or failed and due a retry)
are kept too: a sync is about to write those very keys again (after a killed run, say), and a
listing made before that write must not delete it. Right before deleting, each candidate is checked
once more against fresh catalog references and a fresh HEAD, so a key rewritten while the partition
was being examined survives. Keys outside the layout are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.references import referenced_keys, storage_paths_in_progress
from tvdb_images.partition_keys import partition_key
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
    orphans_in_progress: int = 0  # under an artwork a sync has yet to finish: kept
    kept_on_recheck: int = 0  # rewritten or referenced since the listing: kept
    deleted: int = 0  # a dry run deletes nothing: see would_delete
    bytes_freed: int = 0
    would_delete: int = 0  # dry run only: what a real run would have deleted
    bytes_that_would_be_freed: int = 0
    foreign_keys_ignored: int = 0
    elapsed_seconds: float = 0.0
    examples: list[str] = field(default_factory=list)  # "{real bucket name}/{key}" of deleted objects
    # The same counts for each partition examined ('series|0a'), the run's totals being their sum.
    by_partition: dict[str, CleanupReport] = field(default_factory=dict)

    def add(self, other: CleanupReport) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples.extend(other.examples[: 20 - len(self.examples)])

    def as_dict(self) -> dict[str, Any]:
        """The report without the fields that do not apply: a dry run frees nothing, a real run
        has nothing that would be."""
        real_only, dry_only = ("deleted", "bytes_freed"), ("would_delete", "bytes_that_would_be_freed")
        skipped = {"by_partition", *(real_only if self.dry_run else dry_only)}
        return {k: v for k, v in self.__dict__.items() if k not in skipped}


_COUNTS = (
    "partitions",
    "objects_listed",
    "objects_referenced",
    "orphans_found",
    "orphans_in_grace",
    "orphans_in_progress",
    "kept_on_recheck",
    "deleted",
    "bytes_freed",
    "would_delete",
    "bytes_that_would_be_freed",
    "foreign_keys_ignored",
)


def clean_orphans(
    catalog: Catalog,
    store: ObjectStore,
    partitions: Iterable[tuple[str, str]],
    *,
    grace: timedelta,
    dry_run: bool,
    now: datetime | None = None,
    crops: Iterable[str] = (),
) -> CleanupReport:
    """Delete unreferenced layout keys; `crops` names the configured crop renditions, whose orphaned
    objects are layout keys too (a crop no longer configured is left alone, as a foreign key)."""
    total = CleanupReport(dry_run=dry_run)
    started = time.perf_counter()
    for content_type, shard in partitions:
        report = total.by_partition[partition_key(content_type, shard)] = CleanupReport(dry_run=dry_run)
        report.partitions += 1
        prefix = partition_prefix(content_type, shard)
        listed = {bucket: list(store.list(bucket, prefix)) for bucket in Bucket}
        references = _References.read(catalog, content_type, shard)
        cutoff = (now or datetime.now(UTC)) - grace
        for bucket, objects in listed.items():
            doomed: dict[str, int] = {}
            for obj in objects:
                report.objects_listed += 1
                if obj.key in references.keys[bucket]:
                    report.objects_referenced += 1
                    continue
                if not is_layout_key(obj.key, crops):
                    report.foreign_keys_ignored += 1
                    continue
                report.orphans_found += 1
                if references.in_progress(obj.key):
                    report.orphans_in_progress += 1
                    continue
                if obj.last_modified > cutoff:
                    report.orphans_in_grace += 1
                    continue
                doomed[obj.key] = obj.size
            if dry_run:
                report.would_delete += len(doomed)
                report.bytes_that_would_be_freed += sum(doomed.values())
            elif doomed:
                doomed = _recheck(catalog, store, bucket, content_type, shard, doomed, cutoff, report)
                if doomed:
                    report.deleted += store.delete(bucket, list(doomed))
                report.bytes_freed += sum(doomed.values())
            name = store.bucket_names[bucket]
            report.examples.extend(f"{name}/{key}" for key in list(doomed)[: 20 - len(report.examples)])
        total.add(report)
    total.elapsed_seconds = time.perf_counter() - started
    return total


@dataclass
class _References:
    """What the catalog says about one partition: referenced keys, and artwork paths still in work."""

    keys: dict[Bucket, set[str]]
    busy_paths: set[str]

    @classmethod
    def read(cls, catalog: Catalog, content_type: str, shard: str) -> _References:
        with catalog.session() as session:
            originals, thumbnails = referenced_keys(session, content_type, shard)
            busy = storage_paths_in_progress(session, content_type, shard)
        return cls({Bucket.ORIGINALS: originals, Bucket.THUMBNAILS: thumbnails}, busy)

    def in_progress(self, key: str) -> bool:
        return key.rsplit("/", 1)[0] in self.busy_paths


def _recheck(
    catalog: Catalog,
    store: ObjectStore,
    bucket: Bucket,
    content_type: str,
    shard: str,
    doomed: dict[str, int],
    cutoff: datetime,
    report: CleanupReport,
) -> dict[str, int]:
    """The candidates that are still orphans now: unreferenced, not in progress, not rewritten since."""
    fresh = _References.read(catalog, content_type, shard)
    still: dict[str, int] = {}
    for key, size in doomed.items():
        info = None if key in fresh.keys[bucket] or fresh.in_progress(key) else store.head(bucket, key)
        if info is None or info.last_modified > cutoff:
            report.kept_on_recheck += 1
            continue
        still[key] = size
    return still
