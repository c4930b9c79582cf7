"""The production Dagster instance's storage (dagster/dagster.yaml): dagster-postgres with pooled
connections, on real PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy import event

from tvdb_images.defs.check_results import CheckOutcome, partition_evaluations
from tvdb_images.defs.partitions import artwork_backfill_policy, artwork_partitions, run_partitions
from tvdb_images.deployment.instance_storage import BatchingEventLogStorage
from tvdb_images_tests.support.private_postgres import PrivatePostgres
from tvdb_images_tests.support.ranged_runs import run_over_a_range, what_the_ui_reads, write_home
from tvdb_images_tests.support.stack import deployed_dagster_storage

pytestmark = pytest.mark.services

EVENTS = 40


def count_database_work(instance: dg.DagsterInstance) -> Counter[str]:
    """Connections opened and statements run by the instance's three storages from now on."""
    counts: Counter[str] = Counter()
    for storage in (instance._run_storage, instance._event_storage, instance._schedule_storage):
        event.listen(storage._engine, "connect", lambda *_: counts.update(["connections"]))
        event.listen(storage._engine, "before_cursor_execute", lambda *_: counts.update(["statements"]))
    return counts


def record_materializations(instance: dg.DagsterInstance, count: int) -> None:
    for index in range(count):
        shard = f"{index:02x}"
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "source_images",
                partition=f"series|{shard}",
                metadata={"n": index},
                # As a run over a range of multi-dimensional partitions tags each materialization.
                tags={"dagster/partition/content_type": "series", "dagster/partition/shard": shard},
            )
        )


def test_the_deployed_instance_keeps_its_connections_open(tmp_path: Path, dagster_database: str) -> None:
    instance = dg.DagsterInstance.from_config(write_home(tmp_path / "pooled", deployed_dagster_storage()))
    assert isinstance(instance._event_storage, BatchingEventLogStorage)
    pooled = count_database_work(instance)
    record_materializations(instance, EVENTS)
    assert pooled["connections"] <= 3  # at most one per storage, however many events

    plain = dg.DagsterInstance.from_config(
        write_home(tmp_path / "plain", {"postgres": {"postgres_url": dagster_database}})
    )
    assert type(plain._event_storage) is PostgresEventLogStorage
    unpooled = count_database_work(plain)
    record_materializations(plain, EVENTS)
    # What dagster-postgres alone does: a connection per event, and a look-up of whether the
    # asset_event_tags table exists before each partitioned materialization.
    assert unpooled["connections"] >= EVENTS
    assert unpooled["statements"] - pooled["statements"] >= EVENTS - 1  # the pooled one asks once

    records = instance.fetch_materializations(dg.AssetKey("source_images"), limit=1000).records
    assert len(records) == 2 * EVENTS  # both wrote to the same tables


def test_a_run_process_rebuilds_the_pooled_storage_from_the_instance_ref(
    tmp_path: Path, dagster_database: str
) -> None:
    instance = dg.DagsterInstance.from_config(write_home(tmp_path, deployed_dagster_storage()))
    rebuilt = dg.DagsterInstance.from_ref(instance.get_ref())
    assert isinstance(rebuilt._event_storage, BatchingEventLogStorage)
    assert rebuilt._event_storage._engine.pool.size() == 1  # pooled, not dagster-postgres's NullPool


def test_pooled_connections_survive_a_postgresql_restart(tmp_path: Path) -> None:
    with PrivatePostgres() as postgres:
        storage = deployed_dagster_storage(postgres.create_database("dagster"))
        instance = dg.DagsterInstance.from_config(write_home(tmp_path, storage))
        record_materializations(instance, 2)
        postgres.restart()  # every pooled connection is now dead
        record_materializations(instance, 2)
        records = instance.fetch_materializations(dg.AssetKey("source_images"), limit=10).records
        assert len(records) == 4


def test_batched_events_record_what_event_by_event_recording_does(
    tmp_path: Path, dagster_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dagster-postgres as shipped, one event at a time: the reference.
    plain = dg.DagsterInstance.from_config(
        write_home(tmp_path / "plain", {"postgres": {"postgres_url": dagster_database}})
    )
    plain_run = run_over_a_range(plain)
    expected = what_the_ui_reads(plain, plain_run)
    plain.wipe()

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as the image sets it
    pooled = dg.DagsterInstance.from_config(write_home(tmp_path / "pooled", deployed_dagster_storage()))
    work = count_database_work(pooled)
    batched_run = run_over_a_range(pooled)
    assert what_the_ui_reads(pooled, batched_run) == expected
    assert len(expected["ranged_upstream"]["events"]) == 40  # 20 planned and 20 materialized
    assert expected["ranged_failing"]["last_run_id"] and not expected["ranged_failing"]["materialized"]
    batched_statements = work["statements"]

    # The same run, event by event, on the pooled storage: batching is what saves the statements.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    pooled.wipe()
    unbatched = count_database_work(pooled)
    run_over_a_range(pooled)
    assert batched_statements * 2 < unbatched["statements"]


@dg.asset(partitions_def=artwork_partitions, backfill_policy=artwork_backfill_policy)
def checked_artwork() -> None:
    return None


@dg.asset_check(asset=checked_artwork, partitions_def=artwork_partitions)
def checked_artwork_shard_is_even(context):
    """Passes for even shards, fails for odd ones: a verdict per partition of the run."""
    outcomes = {pair: CheckOutcome(passed=int(pair[1], 16) % 2 == 0) for pair in run_partitions(context)}
    yield from partition_evaluations(context, outcomes)


def check_records(instance: dg.DagsterInstance) -> dict:
    """Each partition's latest check status, and whether it targets the partition's materialization."""
    key = dg.AssetCheckKey(checked_artwork.key, "checked_artwork_shard_is_even")
    return {
        info.partition_key: (info.latest_execution_status.value, info.is_current)
        for info in instance.event_log_storage.get_asset_check_partition_info([key])
    }


def test_batched_check_evaluations_record_what_one_by_one_recording_does(
    tmp_path: Path, dagster_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = dg.Definitions(
        assets=[checked_artwork], asset_checks=[checked_artwork_shard_is_even]
    ).resolve_implicit_global_asset_job_def()
    keys = [str(k) for k in artwork_partitions.get_partition_keys()][:40]
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}

    plain = dg.DagsterInstance.from_config(
        write_home(tmp_path / "plain", {"postgres": {"postgres_url": dagster_database}})
    )
    assert job.execute_in_process(instance=plain, tags=tags).success
    expected = check_records(plain)
    plain.wipe()
    assert expected == {key: ("SUCCEEDED" if i % 2 == 0 else "FAILED", True) for i, key in enumerate(keys)}

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as the image sets it
    pooled = dg.DagsterInstance.from_config(write_home(tmp_path / "pooled", deployed_dagster_storage()))
    work = count_database_work(pooled)
    assert job.execute_in_process(instance=pooled, tags=tags).success
    assert check_records(pooled) == expected
    batched = work["statements"]
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    pooled.wipe()
    unbatched = count_database_work(pooled)
    assert job.execute_in_process(instance=pooled, tags=tags).success
    assert check_records(pooled) == expected
    assert batched * 2 < unbatched["statements"]
