"""The artwork assets: discovery, source download, renditions, orphan cleanup and storage statistics.

Each asset is a thin layer over `tvdb_images.pipeline`: it turns the run's partitions into a catalog
scope, calls the stage, and returns a `MaterializeResult` with metadata. Image bytes stream between the
origin, the workers and object storage; they never pass through an IO manager.
"""

import dagster as dg

from tvdb_images.catalog import work
from tvdb_images.catalog.stats import storage_stats as compute_storage_stats
from tvdb_images.catalog.work import Scope
from tvdb_images.defs.metadata import records_table, stage_metadata
from tvdb_images.defs.partitions import artwork_backfill_policy, artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource, ObjectStorageResource
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.repair import requeue_lost_objects
from tvdb_images.pipeline.report import StageReport
from tvdb_images.storage import StorageError

ARTWORK_GROUP = "artwork"
# Steps that download from TVDB's artwork host share this Dagster concurrency pool, so the host sees
# a bounded number of downloading steps however their runs were launched (dagster.yaml sets the limit).
SOURCE_HOST_POOL = "tvdb_source_host"
# Every per-partition asset: content type x shard, grouped into runs of 128 partitions by backfills.
PARTITIONED_ASSET = {
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
            metadata={"failures_by_cause": dg.MetadataValue.json(dict(report.failures_by_cause))},
        )


@dg.asset(
    **PARTITIONED_ASSET,
    kinds={"sql"},
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
    with catalog.get_catalog().session() as session:
        assigned = work.assign_missing_layout(session)
    try:
        lost = requeue_lost_objects(catalog.get_catalog(), storage.get_store(), scope)
    except StorageError as exc:  # the download and render steps report storage for themselves
        context.log.warning("could not list storage to find lost objects: %s", exc)
        lost = {}
    with catalog.get_catalog().session() as session:
        counts = work.count_work(
            session, scope, max_attempts=settings.max_attempts, signature=settings.signature
        )
    context.log.info("discovery over %d partitions: %s", partitions, counts)
    metadata = {name: dg.MetadataValue.int(value) for name, value in counts.items()}
    metadata["partitions"] = dg.MetadataValue.int(partitions)
    metadata["layout_assigned"] = dg.MetadataValue.int(assigned)
    for name, value in lost.items():
        metadata[f"lost_{name}"] = dg.MetadataValue.int(value)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    deps=[missing_artwork],
    **PARTITIONED_ASSET,
    kinds={"s3"},
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
    context.log.info("source_images: %s", report.as_dict())
    _fail_if_nothing_worked(report)
    return dg.MaterializeResult(metadata=stage_metadata(report, partitions))


class RenditionsConfig(dg.Config):
    rerender_stale: bool = False
    """Also re-render processed artwork whose renditions were made with other settings (quality, format)."""


@dg.asset(
    deps=[source_images],
    **PARTITIONED_ASSET,
    kinds={"pillow", "s3"},
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
    context.log.info("image_renditions: %s", report.as_dict())
    _fail_if_nothing_worked(report)
    metadata = stage_metadata(report, partitions)
    metadata["render_signature"] = dg.MetadataValue.text(settings.signature)
    if report.bytes_in:
        metadata["size_ratio_out_in"] = dg.MetadataValue.float(round(report.bytes_out / report.bytes_in, 3))
    return dg.MaterializeResult(metadata=metadata)


class CleanupConfig(dg.Config):
    dry_run: bool = True
    """Report what would be deleted without deleting; set to false to delete."""
    grace_hours: float | None = None
    """Keep unreferenced objects younger than this (default: ORPHAN_GRACE_HOURS)."""


@dg.asset(
    **PARTITIONED_ASSET,
    kinds={"s3"},
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
        catalog.get_catalog(), _reachable_store(storage), partitions, grace=grace, dry_run=config.dry_run
    )
    context.log.info("orphaned_images: %s", report.as_dict())
    return dg.MaterializeResult(
        metadata={
            "dry_run": dg.MetadataValue.bool(report.dry_run),
            "grace_hours": dg.MetadataValue.float(grace.total_seconds() / 3600),
            "partitions": dg.MetadataValue.int(report.partitions),
            "objects_listed": dg.MetadataValue.int(report.objects_listed),
            "objects_referenced": dg.MetadataValue.int(report.objects_referenced),
            "orphans_found": dg.MetadataValue.int(report.orphans_found),
            "orphans_in_grace": dg.MetadataValue.int(report.orphans_in_grace),
            "deleted": dg.MetadataValue.int(report.deleted),
            "bytes_freed": dg.MetadataValue.int(report.bytes_freed),
            "foreign_keys_ignored": dg.MetadataValue.int(report.foreign_keys_ignored),
            "examples": dg.MetadataValue.json(report.examples),
        }
    )


@dg.asset(
    deps=[image_renditions],
    group_name=ARTWORK_GROUP,
    kinds={"sql"},
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
            "failures_by_cause": dg.MetadataValue.json(stats.failures_by_cause),
        }
    )


def _reachable_store(storage: ObjectStorageResource):  # type: ignore[no-untyped-def]
    try:
        store = storage.get_store()
        store.check()
    except StorageError as exc:
        raise dg.Failure(description=f"object storage is not reachable: {exc}") from exc
    return store


ARTWORK_ASSETS = [missing_artwork, source_images, image_renditions, orphaned_images, storage_stats]
