"""Jobs: the partitioned asset jobs operators backfill, and op jobs the admin API launches by config."""

import dagster as dg

from tvdb_images.catalog import work
from tvdb_images.catalog.work import Scope
from tvdb_images.config import CONTENT_TYPES
from tvdb_images.defs.assets import (
    SOURCE_HOST_POOL,
    image_renditions,
    missing_artwork,
    orphaned_images,
    source_images,
    storage_stats,
)
from tvdb_images.defs.metadata import run_metadata
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource, ObjectStorageResource
from tvdb_images.pipeline.sync import sync_scope

# Runs that download from the TVDB artwork host carry this tag; dagster.yaml limits how many run at once.
SOURCE_HOST_TAG = {"tvdb_images/source_host": "tvdb"}

_SYNC_SELECTION = dg.AssetSelection.assets(missing_artwork, source_images, image_renditions)

sync_images = dg.define_asset_job(
    "sync_images",
    selection=_SYNC_SELECTION | dg.AssetSelection.checks_for_assets(image_renditions),
    description="Find artwork with no local copy, download, validate, render and store it, then check.",
    tags=SOURCE_HOST_TAG,
)

rerender_images = dg.define_asset_job(
    "rerender_images",
    selection=dg.AssetSelection.assets(image_renditions)
    | dg.AssetSelection.checks_for_assets(image_renditions),
    description="Re-render stored sources whose renditions came from other settings (IMAGE_QUALITY, ...).",
    config={"ops": {"image_renditions": {"config": {"rerender_stale": True}}}},
)

cleanup_orphans = dg.define_asset_job(
    "cleanup_orphans",
    selection=dg.AssetSelection.assets(orphaned_images),
    description="Delete objects no catalog row references, older than the grace period (dry run by default).",
)

refresh_storage_stats = dg.define_asset_job(
    "refresh_storage_stats",
    selection=dg.AssetSelection.assets(storage_stats),
    description="Recompute storage statistics from the catalog.",
)


class ContentItemConfig(dg.Config):
    content_type: str
    content_id: int
    retry_failed: bool = True
    """Give failed and gone artwork of this item a fresh attempt first."""


class MissingArtworkConfig(dg.Config):
    content_type: str | None = None
    limit: int = 100


def _check_content_type(content_type: str | None) -> None:
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise dg.Failure(f"unknown content_type {content_type!r}; expected one of {', '.join(CONTENT_TYPES)}")


def _run_sync(
    context: dg.OpExecutionContext,
    scope: Scope,
    limit: int | None,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> None:
    settings = image_pipeline.pipeline_settings()
    with image_pipeline.fetcher() as fetcher:
        download, render = sync_scope(
            catalog.get_catalog(), storage.get_store(), fetcher, settings, scope, limit=limit
        )
    context.log.info("download: %s", download.as_dict())
    context.log.info("render: %s", render.as_dict())
    context.add_output_metadata(
        {f"download_{k}": v for k, v in run_metadata(download).items()}
        | {f"render_{k}": v for k, v in run_metadata(render).items()},
        output_name="result",
    )


@dg.op(out={"result": dg.Out(dg.Nothing)}, tags=SOURCE_HOST_TAG, pool=SOURCE_HOST_POOL)
def sync_content_item_op(
    context: dg.OpExecutionContext,
    config: ContentItemConfig,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> None:
    """Sync every artwork of one content item now, whatever its partition."""
    _check_content_type(config.content_type)
    if config.retry_failed:
        with catalog.get_catalog().session() as session:
            reset = work.reset_failed(
                session, item=(config.content_type, config.content_id), include_gone=True
            )
        context.log.info("reset %d failed artworks for a fresh attempt", reset)
    scope = Scope(item=(config.content_type, config.content_id))
    _run_sync(context, scope, None, catalog, storage, image_pipeline)


@dg.op(out={"result": dg.Out(dg.Nothing)}, tags=SOURCE_HOST_TAG, pool=SOURCE_HOST_POOL)
def sync_missing_artwork_op(
    context: dg.OpExecutionContext,
    config: MissingArtworkConfig,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> None:
    """Sync up to `limit` artworks that have no local copy, optionally of one content type."""
    _check_content_type(config.content_type)
    if config.limit < 1:
        raise dg.Failure("limit must be at least 1")
    _run_sync(
        context, Scope(content_type=config.content_type), config.limit, catalog, storage, image_pipeline
    )


@dg.job(
    description="Sync one content item's artwork now (run config: content_type, content_id).",
    tags=SOURCE_HOST_TAG,
)
def sync_content_item() -> None:
    sync_content_item_op()


@dg.job(
    description="Sync up to `limit` missing artworks, optionally of one content type.", tags=SOURCE_HOST_TAG
)
def sync_missing_artwork() -> None:
    sync_missing_artwork_op()


ALL_JOBS = [
    sync_images,
    rerender_images,
    cleanup_orphans,
    refresh_storage_stats,
    sync_content_item,
    sync_missing_artwork,
]
