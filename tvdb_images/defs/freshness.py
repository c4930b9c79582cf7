"""Keep `storage_stats` fresh: refresh it after anything changed what is stored, not only once a day.

Storage changes through the partitioned assets (`source_images`, `image_renditions`,
`orphaned_images`), whichever way they were launched (backfill, schedule, sensor, admin API), and
through the admin API's op jobs (`sync_content_item`, `sync_missing_artwork`), which materialize no
asset. This sensor looks at both on every tick and requests one `refresh_storage_stats` run when the
newest change is newer than the newest statistics; a backfill of ten runs becomes one or two
refreshes, not ten. The run key is the change's time, so a tick never asks twice for the same change.
"""

from __future__ import annotations

import dagster as dg

from tvdb_images.defs.assets import image_renditions, orphaned_images, source_images, storage_stats
from tvdb_images.defs.jobs import refresh_storage_stats, sync_content_item, sync_missing_artwork

STORAGE_CHANGING_ASSETS = (source_images.key, image_renditions.key, orphaned_images.key)
STORAGE_CHANGING_JOBS = (sync_content_item.name, sync_missing_artwork.name)


def latest_storage_change(instance: dg.DagsterInstance) -> float | None:
    """When storage last changed: the newest materialization of a storage-changing asset (any
    partition) or the end of the newest successful op-job sync, as a Unix timestamp."""
    times: list[float] = []
    for key in STORAGE_CHANGING_ASSETS:
        event = instance.get_latest_materialization_event(key)
        if event is not None:
            times.append(event.timestamp)
    for job_name in STORAGE_CHANGING_JOBS:
        records = instance.get_run_records(
            dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
        )
        if records and records[0].end_time is not None:
            times.append(records[0].end_time)
    return max(times, default=None)


def latest_stats_refresh(instance: dg.DagsterInstance) -> float | None:
    event = instance.get_latest_materialization_event(storage_stats.key)
    return event.timestamp if event is not None else None


@dg.sensor(
    job=refresh_storage_stats,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Refresh storage_stats once storage has changed since its last refresh: a sync, re-render or "
        "cleanup materialized, or a single-item or missing-artwork sync succeeded."
    ),
)
def storage_stats_freshness(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    changed = latest_storage_change(context.instance)
    if changed is None:
        return dg.SkipReason("storage has not changed yet")
    refreshed = latest_stats_refresh(context.instance)
    if refreshed is not None and refreshed >= changed:
        return dg.SkipReason("storage_stats is newer than the last change to storage")
    return dg.RunRequest(run_key=f"storage-change:{changed:.6f}")
