"""The artwork assets: discovery, source download, renditions, orphan cleanup and storage statistics.

Each asset is a thin layer over `tvdb_images.pipeline`: it turns the run's partitions into a catalog
scope, calls the stage, gives each partition's materialization that partition's own numbers and logs
the run's totals once. Image bytes stream between the origin, the workers and object storage; they
never pass through an IO manager.
"""

from collections import Counter
from typing import Any

import dagster as dg

from tvdb_images.catalog import queue
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stats import storage_stats as compute_storage_stats
from tvdb_images.defs.kinds import CATALOG_KIND, OBJECT_STORAGE_KIND
from tvdb_images.defs.metadata import (
    DISCOVERY_COUNTS,
    add_partition_metadata,
    cleanup_metadata,
    discovery_metadata,
    failures_table,
    format_bytes,
    records_table,
    run_summary,
    tally_metadata,
)
from tvdb_images.defs.metrics_push import push_report
from tvdb_images.defs.partitions import artwork_backfill_policy, artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource, ObjectStorageResource
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.cleanup import CleanupReport, clean_orphans
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.repair import LOST_COUNTS, requeue_lost_objects
from tvdb_images.pipeline.report import StageReport, Tally
from tvdb_images.storage import StorageError

ARTWORK_GROUP = "artwork"
# Steps that download from TVDB's artwork host share this Dagster concurrency pool, so the host sees
# a bounded number of downloading steps however their runs were launched (dagster.yaml sets the limit).
SOURCE_HOST_POOL = "tvdb_source_host"
# Every per-partition asset: content type x shard, grouped into runs of MAX_PARTITIONS_PER_RUN (256)
# partitions by backfills.
PARTITIONED_ASSET: dict[str, Any] = {
    "partitions_def": artwork_partitions,
    "backfill_policy": artwork_backfill_policy,
    "group_name": ARTWORK_GROUP,
}


def _partition_scope(context: dg.AssetExecutionContext) -> tuple[Scope, int]:
    partitions = run_partitions(context)
    return Scope(partitions=partitions), len(partitions)


def _fail_if_nothing_worked(report: StageReport) -> None:
    """Bad images are recorded, not raised; but if storage was unreachable for every item, fail the run
    so the failure sensor reports it and run retries can take it again."""
    infrastructure = report.failures_by_cause.get("storage_error", 0) + report.failures_by_cause.get(
        "source_missing", 0
    )
    if report.succeeded == 0 and report.failed > 0 and infrastructure == report.failed:
        raise dg.Failure(
            description=f"{report.stage}: every attempt failed with a storage error",
            metadata={"failures_by_cause": failures_table(report)},
        )


@dg.asset(
    **PARTITIONED_ASSET,
    kinds={CATALOG_KIND, OBJECT_STORAGE_KIND},
    description="Discovery: how much artwork in these partitions has no current local copy, "
    "including processed artwork whose stored objects are gone (sent back to download or render).",
)
def missing_artwork(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    scope, partitions = _partition_scope(context)
    settings = image_pipeline.pipeline_settings()
    # This run's first write: rows inserted without a layout get their place (sensors only read).
    assigned = queue.assign_all_missing_layout(catalog.get_catalog())
    try:
        lost = requeue_lost_objects(catalog.get_catalog(), storage.get_store(), scope)
    except StorageError as exc:  # the download and render steps report storage for themselves
        context.log.warning("could not list storage to find lost objects: %s", exc)
        lost = {}
    with catalog.get_catalog().session() as session:
        by_partition = queue.count_work_by_partition(
            session, scope, max_attempts=settings.max_attempts, signature=settings.signature
        )
    totals: Counter[str] = Counter()
    for counts in by_partition.values():
        totals.update(counts)
    context.log.info(
        "discovery over %d partitions (%d hold artwork): %s; layout assigned to %d new rows; "
        "%d partitions had objects lost from storage",
        partitions,
        len(by_partition),
        ", ".join(f"{name} {count}" for name, count in sorted(totals.items())),
        assigned,
        len(lost),
    )
    none_lost = dict.fromkeys(LOST_COUNTS, 0)
    add_partition_metadata(
        context,
        {
            partition_key(*pair): discovery_metadata(counts) | lost_metadata(lost.get(pair, none_lost))
            for pair, counts in by_partition.items()
        },
        discovery_metadata(dict.fromkeys(DISCOVERY_COUNTS, 0)) | lost_metadata(none_lost),
    )
    return dg.MaterializeResult()


@dg.asset(
    deps=[missing_artwork],
    **PARTITIONED_ASSET,
    kinds={OBJECT_STORAGE_KIND},
    description="Download, validate and store each source image unchanged in the originals bucket.",
    pool=SOURCE_HOST_POOL,
)
def source_images(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    scope, partitions = _partition_scope(context)
    settings = image_pipeline.pipeline_settings()
    store = _reachable_store(storage)
    with image_pipeline.fetcher() as fetcher:
        report = download_sources(catalog.get_catalog(), store, fetcher, settings, scope)
    context.log.info(run_summary(report, partitions))
    push_report(context, image_pipeline.settings, report)
    _fail_if_nothing_worked(report)
    _add_stage_metadata(context, report)
    return dg.MaterializeResult()


class RenditionsConfig(dg.Config):
    rerender_stale: bool = False
    """Also re-render processed artwork whose renditions were made with other settings (quality, format)."""


@dg.asset(
    deps=[source_images],
    **PARTITIONED_ASSET,
    kinds={"pillow", OBJECT_STORAGE_KIND},
    description="Render each stored source into every size as WebP/AVIF, upload, then record the URLs.",
)
def image_renditions(
    context: dg.AssetExecutionContext,
    config: RenditionsConfig,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    scope, partitions = _partition_scope(context)
    settings = image_pipeline.pipeline_settings()
    store = _reachable_store(storage)
    report = render_stored_sources(
        catalog.get_catalog(), store, settings, scope, include_stale=config.rerender_stale
    )
    context.log.info(run_summary(report, partitions))
    push_report(context, image_pipeline.settings, report)
    _fail_if_nothing_worked(report)
    _add_stage_metadata(context, report)
    # The same for every partition of the run: the settings its renditions were made with.
    return dg.MaterializeResult(metadata={"render_signature": dg.MetadataValue.text(settings.signature)})


def _add_stage_metadata(context: dg.AssetExecutionContext, report: StageReport) -> None:
    """Each partition's own counts onto its own materialization."""

    def metadata(tally: Tally) -> dict[str, dg.MetadataValue]:
        values = tally_metadata(report.stage, tally)
        if tally.bytes_in:
            values["size_ratio_out_in"] = dg.MetadataValue.float(round(tally.bytes_out / tally.bytes_in, 3))
        return values

    per_partition = {name: metadata(tally) for name, tally in report.by_partition.items()}
    add_partition_metadata(context, per_partition, metadata(Tally()))


def lost_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    """`lost_*`: the partition's objects found missing from storage, and the artwork sent back to work."""
    return {f"lost_{name}": dg.MetadataValue.int(value) for name, value in counts.items()}


class CleanupConfig(dg.Config):
    dry_run: bool = True
    """Report what would be deleted without deleting; set to false to delete."""
    grace_hours: float | None = None
    """Keep unreferenced objects younger than this (default: ORPHAN_GRACE_HOURS)."""


@dg.asset(
    **PARTITIONED_ASSET,
    kinds={OBJECT_STORAGE_KIND},
    description="Objects in a partition's prefix that no catalog row references; deleted after a grace time.",
)
def orphaned_images(
    context: dg.AssetExecutionContext,
    config: CleanupConfig,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    from datetime import timedelta

    partitions = run_partitions(context)
    settings = image_pipeline.pipeline_settings()
    grace = timedelta(hours=config.grace_hours) if config.grace_hours is not None else settings.orphan_grace
    report = clean_orphans(
        catalog.get_catalog(),
        _reachable_store(storage),
        partitions,
        grace=grace,
        dry_run=config.dry_run,
        crops=settings.crop_names,
    )
    push_report(context, image_pipeline.settings, report)
    context.log.info(
        "orphaned_images over %d partitions: %d orphans found, %d %s, %s %s",
        report.partitions,
        report.orphans_found,
        report.would_delete if report.dry_run else report.deleted,
        "would be deleted (dry run)" if report.dry_run else "deleted",
        format_bytes(report.bytes_that_would_be_freed if report.dry_run else report.bytes_freed),
        "would be freed" if report.dry_run else "freed",
    )
    add_partition_metadata(
        context,
        {name: cleanup_metadata(part) for name, part in report.by_partition.items()},
        cleanup_metadata(CleanupReport(dry_run=report.dry_run)),
    )
    return dg.MaterializeResult(
        metadata={
            "dry_run": dg.MetadataValue.bool(report.dry_run),
            "grace_hours": dg.MetadataValue.float(grace.total_seconds() / 3600),
        }
    )


@dg.asset(
    deps=[image_renditions],
    group_name=ARTWORK_GROUP,
    kinds={CATALOG_KIND},
    description="Objects and bytes stored, by content type and size, with artwork counts by status.",
)
def storage_stats(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
    with catalog.get_catalog().session() as session:
        stats = compute_storage_stats(session)
    context.log.info("storage: %d objects, %.1f MB", stats.total_objects, stats.total_size_mb)
    return dg.MaterializeResult(
        metadata={
            "total_objects": dg.MetadataValue.int(stats.total_objects),
            "total_size_mb": dg.MetadataValue.float(stats.total_size_mb),
            "renditions": records_table(stats.renditions),
            "originals": records_table(stats.originals),
            "artwork_by_status": records_table(stats.artwork_by_status),
            "total_size": dg.MetadataValue.text(format_bytes(stats.total_bytes)),
            "shared_renditions": dg.MetadataValue.int(stats.shared_renditions),
            "bytes_saved_by_deduplication": dg.MetadataValue.int(stats.bytes_saved_by_dedup),
            "bytes_saved_by_near_deduplication": dg.MetadataValue.int(stats.bytes_saved_by_near_dedup),
            "failures_by_cause": records_table(
                [{"cause": cause, "count": count} for cause, count in stats.failures_by_cause.items()]
            ),
        }
    )


def _reachable_store(storage: ObjectStorageResource):
    try:
        store = storage.get_store()
        store.check()
    except StorageError as exc:
        raise dg.Failure(description=f"object storage is not reachable: {exc}") from exc
    return store


ARTWORK_ASSETS = [missing_artwork, source_images, image_renditions, orphaned_images, storage_stats]
