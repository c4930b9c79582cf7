"""Jobs: the partitioned asset jobs operators backfill, and op jobs the admin API launches by config."""

from enum import Enum

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from tvdb_images.catalog import queue, references
from tvdb_images.catalog.scope import Scope
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
from tvdb_images.defs.metrics_push import push_report
from tvdb_images.defs.refresh_job import refresh_artwork
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


ContentTypeName = Enum("ContentTypeName", {name: name for name in CONTENT_TYPES}, type=str)  # type: ignore[misc]  # members from a tuple: mypy needs literals
"""The catalog's content types: the launchpad offers exactly these."""


class ContentItemConfig(dg.Config):
    """One content item to sync now. The launchpad's scaffold is a template: it lists the content types
    to choose from and puts 0, which is no TVDB id, for content_id."""

    content_type: ContentTypeName = Field(description="The item's catalog table: one of the values listed.")
    content_id: int = Field(
        gt=0,
        description="The item's TVDB id, a positive integer (not the scaffold's 0); "
        "the run fails, naming it, if the catalog has no such item.",
    )
    retry_failed: bool = Field(
        default=True, description="Give failed and gone artwork of this item a fresh attempt first."
    )


class MissingArtworkConfig(dg.Config):
    """Which artwork without a local copy to sync now."""

    content_type: ContentTypeName | None = Field(
        default=None, description="Only artwork of this content type (empty: all types)."
    )
    limit: int = Field(
        default=100, ge=1, le=10_000, description="At most this many artworks (1 to 10,000) in this run."
    )


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
    push_report(context, image_pipeline.settings, download)
    push_report(context, image_pipeline.settings, render)
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
    item = (config.content_type.value, config.content_id)
    with catalog.get_catalog().session() as session:
        if not references.content_item_exists(session, *item):
            raise dg.Failure(
                description=f"the catalog has no {item[0]} with id {item[1]}: nothing to sync",
                metadata={"content_type": item[0], "content_id": item[1]},
            )
        if config.retry_failed:
            reset = queue.reset_failed(session, item=item, include_gone=True)
            context.log.info("reset %d failed artworks for a fresh attempt", reset)
    scope = Scope(item=item)
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
    content_type = config.content_type.value if config.content_type is not None else None
    _run_sync(context, Scope(content_type=content_type), config.limit, catalog, storage, image_pipeline)


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


ALL_JOBS: list[dg.JobDefinition | UnresolvedAssetJobDefinition] = [
    sync_images,
    rerender_images,
    cleanup_orphans,
    refresh_storage_stats,
    sync_content_item,
    sync_missing_artwork,
    refresh_artwork,
]
