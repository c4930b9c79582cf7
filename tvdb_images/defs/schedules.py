"""Schedules: the nightly sync, the weekly orphan cleanup and a daily statistics refresh.

Schedules are created stopped, as Dagster does by default; operators turn them on in the UI
(Automation) or with `dagster schedule start`. A schedule only reads the catalog; the runs it requests
write.
"""

import dagster as dg

from tvdb_images.catalog import queue
from tvdb_images.defs.jobs import cleanup_orphans, refresh_storage_stats, sync_images
from tvdb_images.defs.requests import range_run_requests
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource
from tvdb_images.partition_keys import every_partition


@dg.schedule(
    job=sync_images,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    description="Every night: sync every partition that has artwork without a current local copy.",
)
def nightly_sync(
    context: dg.ScheduleEvaluationContext, catalog: CatalogResource, image_pipeline: ImagePipelineResource
) -> list[dg.RunRequest] | dg.SkipReason:
    settings = image_pipeline.pipeline_settings()
    with catalog.get_catalog().session() as session:
        partitions = queue.partitions_with_work(session, max_attempts=settings.max_attempts)
    if not partitions:
        return dg.SkipReason("no partition has artwork to sync")
    tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
    return range_run_requests(partitions, run_key_prefix=f"nightly:{tick}")


@dg.schedule(
    job=cleanup_orphans,
    cron_schedule="0 4 * * 0",
    execution_timezone="UTC",
    description="Every Sunday: delete orphaned objects older than the grace period, in every partition.",
)
def weekly_cleanup(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
    return range_run_requests(
        every_partition(),
        run_key_prefix=f"cleanup:{tick}",
        run_config={"ops": {"orphaned_images": {"config": {"dry_run": False}}}},
    )


daily_storage_stats = dg.ScheduleDefinition(
    name="daily_storage_stats",
    job=refresh_storage_stats,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Every morning, after the nightly sync: refresh storage statistics.",
)

ALL_SCHEDULES = [nightly_sync, weekly_cleanup, daily_storage_stats]
