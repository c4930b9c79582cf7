"""Source revalidation in Dagster: the `source_revalidation` asset, the `revalidate_sources` job, and
the daily schedule that spreads the work over SOURCE_REVALIDATE_DAYS days.

Each day the schedule covers one contiguous block of 1/N of the 256 shards (N = SOURCE_REVALIDATE_DAYS)
in every content type, so every source is asked about once in N days, and a day's work is 1/N of the
catalog in five partition-range runs. The asset revalidates, then renders what changed in the same
step (`image_renditions` does not depend on it, so the sync jobs never see it as a missing upstream).
"""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg

from tvdb_images.config import CONTENT_TYPES
from tvdb_images.defs.assets import (
    PARTITIONED_ASSET,
    SOURCE_HOST_POOL,
    _fail_if_nothing_worked,
    _partition_scope,
    _reachable_store,
)
from tvdb_images.defs.jobs import SOURCE_HOST_TAG
from tvdb_images.defs.kinds import OBJECT_STORAGE_KIND
from tvdb_images.defs.metadata import add_partition_metadata, run_summary, tally_metadata
from tvdb_images.defs.metrics_push import push_report
from tvdb_images.defs.requests import range_run_requests
from tvdb_images.defs.resources import CatalogResource, ImagePipelineResource, ObjectStorageResource
from tvdb_images.pipeline.report import Tally
from tvdb_images.pipeline.revalidate import (
    CHANGED,
    IDENTICAL,
    NOT_MODIFIED,
    REFUSED,
    SAME_SIZE_AND_TYPE,
    due_before,
)
from tvdb_images.pipeline.sync import revalidate_scope
from tvdb_images.storage.layout import SHARDS

OUTCOMES = (NOT_MODIFIED, SAME_SIZE_AND_TYPE, IDENTICAL, CHANGED, REFUSED)


class RevalidationConfig(dg.Config):
    all_sources: bool = False
    """Ask about every served source in the partitions, not only those due (SOURCE_REVALIDATE_DAYS)."""


@dg.asset(
    **PARTITIONED_ASSET,
    kinds={OBJECT_STORAGE_KIND},
    description=(
        "Ask the origin whether each stored source is still current (conditional GET, or HEAD): new "
        "bytes are stored for re-rendering, refused ones leave the last good image to STALE_IMAGE_POLICY."
    ),
    pool=SOURCE_HOST_POOL,
)
def source_revalidation(
    context: dg.AssetExecutionContext,
    config: RevalidationConfig,
    catalog: CatalogResource,
    storage: ObjectStorageResource,
    image_pipeline: ImagePipelineResource,
) -> dg.MaterializeResult:
    scope, partitions = _partition_scope(context)
    settings = image_pipeline.pipeline_settings()
    checked_before = None if config.all_sources else due_before(settings)
    if checked_before is None and not config.all_sources:
        context.log.info("SOURCE_REVALIDATE_DAYS is 0: revalidation is off")
        return dg.MaterializeResult(metadata={"disabled": dg.MetadataValue.bool(True)})
    store = _reachable_store(storage)
    with image_pipeline.fetcher() as fetcher:
        # New bytes are rendered here too: image_renditions does not depend on this asset, so the sync
        # jobs never show revalidation as a missing upstream.
        report, rendered = revalidate_scope(
            catalog.get_catalog(), store, fetcher, settings, scope, checked_before=checked_before
        )
    context.log.info(run_summary(report, partitions))
    context.log.info(run_summary(rendered, partitions))
    push_report(context, image_pipeline.settings, report)
    push_report(context, image_pipeline.settings, rendered)
    context.log.info(
        "source_revalidation outcomes %s, requests %s", dict(report.outcomes), dict(report.requests)
    )
    _fail_if_nothing_worked(report)

    def metadata(tally: Tally, outcomes: Counter[str]) -> dict[str, dg.MetadataValue]:
        values = tally_metadata(report.stage, tally)
        for outcome in OUTCOMES:
            values[outcome] = dg.MetadataValue.int(outcomes.get(outcome, 0))
        return values

    per_partition = {
        name: metadata(tally, report.outcomes_by_partition.get(name, Counter()))
        | {"rendered": dg.MetadataValue.int(rendered.partition(name).succeeded)}
        for name, tally in report.by_partition.items()
    }
    add_partition_metadata(
        context, per_partition, metadata(Tally(), Counter()) | {"rendered": dg.MetadataValue.int(0)}
    )
    return dg.MaterializeResult(
        metadata={
            "checked_before": dg.MetadataValue.text(checked_before.isoformat() if checked_before else "all")
        }
    )


revalidate_sources_job = dg.define_asset_job(
    "revalidate_sources",
    selection=dg.AssetSelection.assets(source_revalidation),
    description="Revalidate due sources against their origin and re-render those that changed.",
    tags=SOURCE_HOST_TAG,
)


def shards_of_day(day: int, period_days: int) -> list[str]:
    """The contiguous block of shards a daily pass covers on `day`: 1/period_days of them, so that
    `period_days` consecutive days cover each shard exactly once."""
    block = day % period_days
    return list(SHARDS[block * len(SHARDS) // period_days : (block + 1) * len(SHARDS) // period_days])


@dg.schedule(
    job=revalidate_sources_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    description="Every night: revalidate the sources of 1/SOURCE_REVALIDATE_DAYS of the shards.",
)
def daily_source_revalidation(
    context: dg.ScheduleEvaluationContext, image_pipeline: ImagePipelineResource
) -> list[dg.RunRequest] | dg.SkipReason:
    period = image_pipeline.settings.source_revalidate_days
    if period <= 0:
        return dg.SkipReason("SOURCE_REVALIDATE_DAYS is 0: revalidation is off")
    moment = context.scheduled_execution_time or datetime.now(UTC)
    shards = shards_of_day(moment.date().toordinal(), period)
    if not shards:
        return dg.SkipReason(f"no shard falls on this day of the {period}-day cycle")
    partitions = {(content_type, shard) for content_type in CONTENT_TYPES for shard in shards}
    return range_run_requests(partitions, run_key_prefix=f"revalidate:{moment.isoformat()}")


REVALIDATION_ASSETS = [source_revalidation]
REVALIDATION_JOBS = [revalidate_sources_job]
REVALIDATION_SCHEDULES = [daily_source_revalidation]
