"""Sensors: react to catalog changes within a minute, and report failed runs with their partitions.

A sensor only reads the catalog: whatever a run needs written first (rows placed in the layout) its
first step writes, so a tick that is evaluated, retried or skipped changes nothing."""

import logging
from datetime import datetime, timedelta

import dagster as dg

from tvdb_images.catalog import queue
from tvdb_images.defs.freshness import storage_stats_freshness
from tvdb_images.defs.jobs import sync_images
from tvdb_images.defs.requests import range_run_requests
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource
from tvdb_images.partition_keys import PARTITION_NAME_TAG, RANGE_END_TAG, RANGE_START_TAG

log = logging.getLogger(__name__)

WATERMARK_OVERLAP = timedelta(minutes=2)


@dg.sensor(
    job=sync_images,
    minimum_interval_seconds=60,
    description=(
        "New or changed artwork in the catalog: request sync runs for just the partitions it falls in. "
        "The cursor is a watermark: the newest artwork.updated_at already handled."
    ),
)
def catalog_changes_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, image_pipeline: ImagePipelineResource
) -> dg.SensorResult | dg.SkipReason:
    settings = image_pipeline.pipeline_settings()
    since = datetime.fromisoformat(context.cursor) if context.cursor else None
    with catalog.get_catalog().session() as session:
        latest = queue.latest_change(session)
        if latest is None or (since is not None and latest <= since):
            return dg.SkipReason("no artwork changed since the last tick")
        # Look back a little past the watermark: a transaction that committed late may carry an older
        # timestamp. Extra partitions cost one idempotent run; the nightly sync is the final backstop.
        lookback = since - WATERMARK_OVERLAP if since is not None else None
        partitions = queue.partitions_with_work(
            session, max_attempts=settings.max_attempts, changed_since=lookback
        )
    watermark = latest.isoformat()
    requests = range_run_requests(partitions, run_key_prefix=f"catalog:{watermark}")
    context.log.info(
        "%d changed partitions -> %d runs; watermark %s", len(partitions), len(requests), watermark
    )
    return dg.SensorResult(run_requests=requests, cursor=watermark)


@dg.run_failure_sensor(
    description="Log every failed run with the partitions it covered, so operators can backfill just those.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_failed_runs(context: dg.RunFailureSensorContext) -> None:
    tags = context.dagster_run.tags
    partition = tags.get(PARTITION_NAME_TAG)
    if partition is None and RANGE_START_TAG in tags:
        partition = f"{tags[RANGE_START_TAG]}...{tags[RANGE_END_TAG]}"
    message = (
        f"run {context.dagster_run.run_id} of {context.dagster_run.job_name} failed "
        f"(partitions: {partition or 'none'}): {context.failure_event.message}"
    )
    context.log.error(message)
    log.error(message)


ALL_SENSORS = [catalog_changes_sensor, report_failed_runs, storage_stats_freshness]
