"""Dagster instances for the storage tests: a home with a given storage, and one run over a range of
partitions with what the UI reads of it, to compare one storage's record with another's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import yaml


def write_home(home: Path, storage: dict) -> str:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, "storage": storage}))
    return str(home)


letters = dg.StaticPartitionsDefinition([f"p{index:02d}" for index in range(24)])


@dg.asset(partitions_def=letters, backfill_policy=dg.BackfillPolicy.single_run())
def ranged_upstream() -> None:
    return None


@dg.asset(partitions_def=letters, deps=[ranged_upstream], backfill_policy=dg.BackfillPolicy.single_run())
def ranged_downstream() -> None:
    return None


@dg.asset(partitions_def=letters, deps=[ranged_upstream], backfill_policy=dg.BackfillPolicy.single_run())
def ranged_failing() -> None:
    """Planned but never materialized: what the UI knows of it comes from the planned events alone."""
    raise RuntimeError("this asset always fails")


@dg.asset_check(asset=ranged_downstream)
def ranged_downstream_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def run_over_a_range(instance: dg.DagsterInstance) -> str:
    """One run over 20 of the 24 partitions, as a backfill's ranged run (planned, then materialized)."""
    job = dg.Definitions(
        assets=[ranged_upstream, ranged_downstream, ranged_failing], asset_checks=[ranged_downstream_check]
    ).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": "p02", "dagster/asset_partition_range_end": "p21"}
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success and result.is_node_failed("ranged_failing")
    return result.run_id


def what_the_ui_reads(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Per asset: the partitions planned and materialized by the run, its last run and planned info."""
    seen: dict = {}
    for key in (
        dg.AssetKey("ranged_upstream"),
        dg.AssetKey("ranged_downstream"),
        dg.AssetKey("ranged_failing"),
    ):
        events = Counter(
            (entry.dagster_event.event_type_value, entry.dagster_event.partition)
            for entry in instance.all_logs(run_id)
            if entry.dagster_event is not None and entry.dagster_event.asset_key == key
        )
        record = instance.get_asset_records([key])[0]
        planned = instance.get_latest_planned_materialization_info(key, partition="p10")
        seen[key.to_user_string()] = {
            "events": sorted(events.items()),
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "last_run_id": record.asset_entry.last_run_id == run_id,
            "planned_run": planned.run_id == run_id if planned else None,
        }
    seen["check"] = sorted(
        entry.dagster_event.event_type_value
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None and "CHECK" in entry.dagster_event.event_type_value
    )
    return seen
