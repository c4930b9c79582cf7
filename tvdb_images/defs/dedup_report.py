"""Near-duplicates for analysts: `dedup_report` hashes artwork rendered before perceptual hashes
existed (from its stored thumbnail), lists the clusters of near-identical artwork (the same
picture at another size or quality, by perceptual hash) with the bytes they take and the best source
of each, and applies DEDUP_NEAR_DUPLICATES: on, each cluster is served from its best member's
renditions; off (the default), members served that way are queued to be rendered on their own again
(`rerender_images`). A daily schedule runs it after the nightly sync.
"""

import dagster as dg

from tvdb_images.catalog.near_duplicates import Cluster, find_clusters
from tvdb_images.defs.kinds import CATALOG_KIND, OBJECT_STORAGE_KIND
from tvdb_images.defs.metadata import format_bytes
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource, ObjectStorageResource
from tvdb_images.pipeline.near_fold import fold_near_duplicates, unfold_near_duplicates
from tvdb_images.pipeline.perceptual_backfill import backfill_perceptual_hashes

DEDUP_GROUP = "analytics"
TABLE_ROWS = 50


@dg.asset(
    name="dedup_report",
    deps=["image_renditions"],
    group_name=DEDUP_GROUP,
    kinds={CATALOG_KIND, OBJECT_STORAGE_KIND},
    description="Clusters of near-identical artwork (same picture, other size or quality) with their "
    "bytes and best source; serves each from its best member when DEDUP_NEAR_DUPLICATES is on.",
)
def dedup_report(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    settings = image_pipeline.pipeline_settings()
    db = catalog.get_catalog()
    store = storage.get_store()
    backfilled = backfill_perceptual_hashes(db, store)  # artwork rendered before hashes existed
    with db.session() as session:
        clusters = find_clusters(session)
    metadata: dict[str, dg.MetadataValue] = {
        "hashes_backfilled": dg.MetadataValue.int(backfilled.hashed),
        "clusters": dg.MetadataValue.int(len(clusters)),
        "artworks_in_clusters": dg.MetadataValue.int(sum(len(c.members) for c in clusters)),
        "bytes_in_clusters": dg.MetadataValue.int(sum(c.bytes for c in clusters)),
        "bytes_reclaimable": dg.MetadataValue.int(sum(c.bytes_reclaimable for c in clusters)),
        "near_duplicates_served_from_best": dg.MetadataValue.bool(settings.dedup_near),
        "clusters_table": dg.MetadataValue.md(clusters_table(clusters)),
    }
    if settings.dedup_near:
        folded = fold_near_duplicates(db, store, clusters=clusters)
        metadata["members_folded"] = dg.MetadataValue.int(folded.folded)
        metadata["members_skipped"] = dg.MetadataValue.int(folded.skipped)
        metadata["bytes_released"] = dg.MetadataValue.int(folded.bytes_released)
        context.log.info("%d near-duplicates now served from their best member", folded.folded)
    else:
        unfolded = unfold_near_duplicates(db)
        metadata["members_unfolded"] = dg.MetadataValue.int(unfolded)
    context.log.info(
        "%d near-duplicate clusters, %s reclaimable",
        len(clusters),
        format_bytes(sum(c.bytes_reclaimable for c in clusters)),
    )
    return dg.MaterializeResult(metadata=metadata)


def clusters_table(clusters: list[Cluster]) -> str:
    """The largest clusters (by reclaimable bytes) as Markdown, the best member named per cluster."""
    if not clusters:
        return "No near-duplicate clusters."
    lines = [
        "| # | best artwork | content | size | score | members | sources | bytes | reclaimable |",
        "|---:|---:|---|---|---:|---|---:|---:|---:|",
    ]
    for rank, cluster in enumerate(clusters[:TABLE_ROWS], 1):
        best = cluster.best
        others = ", ".join(str(m.artwork_id) for m in cluster.members[1:])
        lines.append(
            f"| {rank} | {best.artwork_id} | {best.content_type}/{best.content_id} {best.image_type} "
            f"| {best.width}x{best.height} | {best.score} | {others} | {cluster.sources} "
            f"| {format_bytes(cluster.bytes)} | {format_bytes(cluster.bytes_reclaimable)} |"
        )
    if len(clusters) > TABLE_ROWS:
        lines.append(f"\n{len(clusters) - TABLE_ROWS} smaller clusters not listed.")
    return "\n".join(lines)


dedup_report_job = dg.define_asset_job(
    "dedup_report_job",
    selection=dg.AssetSelection.assets(dedup_report),
    description="List near-duplicate clusters and apply DEDUP_NEAR_DUPLICATES.",
)

daily_dedup_report = dg.ScheduleDefinition(
    name="daily_dedup_report",
    job=dedup_report_job,
    cron_schedule="30 6 * * *",
    execution_timezone="UTC",
    description="Every morning, after the nightly sync: report near-duplicates (and serve them from "
    "their best member when DEDUP_NEAR_DUPLICATES is on).",
)

DEDUP_ASSETS = [dedup_report]
DEDUP_JOBS = [dedup_report_job]
DEDUP_SCHEDULES = [daily_dedup_report]
