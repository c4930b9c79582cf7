"""Every launch path records exactly the partitions its run processed, through Dagster's own APIs.

A job backfill's range run is given the tags Dagster 1.13.27's backfill daemon gives it (the first
partition's tags minus `dagster/partition`, plus the range); schedules, sensors and the admin API
tag their runs with ranges. The browser test (test_dagster_ui.py) runs the job backfill through the
real daemon; these check the tags and the records without one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from serving.routes.admin import RANGE_END_TAG as ADMIN_RANGE_END
from serving.routes.admin import RANGE_START_TAG as ADMIN_RANGE_START
from serving.routes.admin import cleanup_partition_range
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN, artwork_partitions
from tvdb_images.defs.resources import resources_from_settings
from tvdb_images.partition_keys import PARTITION_NAME_TAG, RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.storage.layout import SHARDS

SYNC_ASSETS = ("missing_artwork", "source_images", "image_renditions")


@pytest.fixture
def settings(tmp_path: Path, sqlite_catalog: Catalog) -> Settings:
    return Settings.model_validate(
        {"DATABASE_URL": sqlite_catalog.url, "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}
    )


def _keys(start: str, end: str) -> set[str]:
    return {str(k) for k in artwork_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))}


def job_backfill_run_tags(job: dg.JobDefinition, start: str, end: str) -> dict[str, str]:
    """The tags Dagster's job backfill gives a range run (dagster/_core/execution/job_backfill.py)."""
    assert job.partitioned_config is not None
    first = job.partitioned_config.get_tags_for_partition_key(start, job_name=job.name)
    return {
        **{k: v for k, v in first.items() if k != PARTITION_NAME_TAG},
        RANGE_START_TAG: start,
        RANGE_END_TAG: end,
    }


def test_a_job_backfill_range_run_records_its_whole_range(settings: Settings) -> None:
    defs = build_definitions(settings)
    job = defs.resolve_job_def("sync_images")
    tags = job_backfill_run_tags(job, "people|00", "people|3f")
    assert not any(key.startswith(f"{PARTITION_NAME_TAG}/") for key in tags), tags
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, tags=tags)
    assert result.success
    for asset in SYNC_ASSETS:
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == _keys("people|00", "people|3f")
    # A single-partition launch (the launchpad) is named by `dagster/partition` and records just it.
    one = job.execute_in_process(instance=instance, partition_key="series|0a")
    assert one.success and one.dagster_run.tags[PARTITION_NAME_TAG] == "series|0a"
    assert "series|0a" in instance.get_materialized_partitions(dg.AssetKey("image_renditions"))
    assert not any(
        key.startswith("series|") and key != "series|0a"
        for key in instance.get_materialized_partitions(dg.AssetKey("image_renditions"))
    )


def test_a_run_whose_tags_disagree_with_its_partitions_fails_without_syncing(settings: Settings) -> None:
    """A run queued under the old tags (one partition's dimension tags plus a range) would sync the
    range but be recorded for one partition: it fails at its first step and records nothing."""
    job = build_definitions(settings).resolve_job_def("sync_images")
    tags = {
        "dagster/partition/content_type": "people",
        "dagster/partition/shard": "00",
        RANGE_START_TAG: "people|00",
        RANGE_END_TAG: "people|3f",
    }
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "people|00...people|3f" in failure.step_failure_data.error.message
    assert instance.get_materialized_partitions(dg.AssetKey("missing_artwork")) == set()


def test_schedule_sensor_and_admin_api_runs_record_the_ranges_they_claim(settings: Settings) -> None:
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    # The weekly cleanup schedule: five range runs over every partition, one per content type (dry run
    # here).
    weekly = defs.get_schedule_def("weekly_cleanup")
    tick = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        requests = weekly.evaluate_tick(context).run_requests
    cleanup = defs.resolve_job_def("cleanup_orphans")
    dry = {"ops": {"orphaned_images": {"config": {"dry_run": True}}}}
    for request in requests[:2]:
        assert cleanup.execute_in_process(instance=instance, tags=request.tags, run_config=dry).success
    claimed = set().union(*(_keys(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests[:2]))
    assert instance.get_materialized_partitions(dg.AssetKey("orphaned_images")) == claimed
    assert len(requests) == 5 and len(claimed) == 2 * MAX_PARTITIONS_PER_RUN == 512

    # The admin API's cleanup of one content type: one run over its 256 partitions.
    start, end = cleanup_partition_range("movies")
    assert (ADMIN_RANGE_START, ADMIN_RANGE_END) == (RANGE_START_TAG, RANGE_END_TAG)
    admin_tags = {ADMIN_RANGE_START: start, ADMIN_RANGE_END: end}
    other = dg.DagsterInstance.ephemeral()
    assert cleanup.execute_in_process(instance=other, tags=admin_tags, run_config=dry).success
    assert other.get_materialized_partitions(dg.AssetKey("orphaned_images")) == {
        f"movies|{shard}" for shard in SHARDS
    }

    # The nightly schedule (and the catalog sensor, which builds its requests the same way) on an
    # empty catalog asks for nothing, so it records nothing.
    nightly = defs.get_schedule_def("nightly_sync")
    with dg.build_schedule_context(
        resources=resources_from_settings(settings), scheduled_execution_time=tick
    ) as context:
        assert nightly.evaluate_tick(context).skip_message
