"""The embedded default's Dagster instance (top-level dagster.yaml): Dagster's SQLite storage writing a
partitioned run's planned events in batches, recording exactly what the stock storage records."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import deserialize_value
from sqlalchemy import select

from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.partitions import artwork_partitions
from tvdb_images.deployment.sqlite_instance_storage import (
    BatchingSqliteEventLogStorage,
    BatchingSqliteStorage,
)
from tvdb_images_tests.support.ranged_runs import run_over_a_range, what_the_ui_reads, write_home
from tvdb_images_tests.support.stack import deployed_dagster_storage

REPOSITORY = Path(__file__).resolve().parents[2]
FULL_RANGE = {
    "dagster/asset_partition_range_start": "episodes|00",
    "dagster/asset_partition_range_end": "series|ff",
}


def embedded_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The instance `dagster dev` / `dagster job launch` open with the repository's dagster.yaml."""
    home.mkdir(parents=True)
    shutil.copy(REPOSITORY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


def count_connections(instance: dg.DagsterInstance) -> Counter[str]:
    """SQLite connections the event log opens from now on (one per store, run or index database)."""
    storage: Any = instance._event_storage
    counts: Counter[str] = Counter()
    original = storage._connect

    def counting(shard: str):
        counts.update(["index" if shard == "index" else "run"])
        return original(shard)

    storage._connect = counting
    return counts


def test_the_embedded_instance_uses_the_batching_storage_and_turns_batching_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "placeholder")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")  # restored to unset afterwards
    instance = embedded_instance(tmp_path / "home", monkeypatch)
    assert isinstance(instance.get_ref().storage, BatchingSqliteStorage)
    assert isinstance(instance._event_storage, BatchingSqliteEventLogStorage)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"
    # Dagster's own layout under DAGSTER_HOME, so an existing home keeps its history.
    assert (tmp_path / "home" / "history" / "runs.db").is_file()
    assert (tmp_path / "home" / "schedules" / "schedules.db").is_file()


def test_an_operator_batch_size_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    embedded_instance(tmp_path / "home", monkeypatch)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"


def test_batched_planned_events_record_what_dagsters_sqlite_storage_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    plain = dg.DagsterInstance.from_config(
        write_home(tmp_path / "plain", {"sqlite": {"base_dir": str(tmp_path / "plain")}})
    )
    plain_connections = count_connections(plain)
    plain_run = run_over_a_range(plain)
    expected = what_the_ui_reads(plain, plain_run)

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    batching = embedded_instance(tmp_path / "batching", monkeypatch)
    batched_connections = count_connections(batching)
    batched_run = run_over_a_range(batching)
    assert what_the_ui_reads(batching, batched_run) == expected
    assert len(expected["ranged_upstream"]["events"]) == 40  # 20 planned and 20 materialized
    assert expected["ranged_failing"]["last_run_id"] and not expected["ranged_failing"]["materialized"]
    # 60 planned events: two connections each, event by event; two for the whole batch.
    assert sum(plain_connections.values()) - sum(batched_connections.values()) >= 2 * 60 - 4


def test_creating_a_run_over_every_partition_takes_a_few_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    instance = embedded_instance(tmp_path / "home", monkeypatch)
    connections = count_connections(instance)
    run_id = create_full_range_run(instance, tmp_path)
    # Event by event this is two connections per planned event (7,680); batched, a handful per batch.
    assert sum(connections.values()) < 40, connections
    assert_full_range_recorded(instance, run_id)


@pytest.mark.services
@pytest.mark.usefixtures("dagster_database")  # sets DAGSTER_POSTGRES_URL, which the deployed storage reads
def test_a_full_range_run_on_the_deployed_postgresql_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as the image sets it
    instance = dg.DagsterInstance.from_config(write_home(tmp_path / "pg", deployed_dagster_storage()))
    assert_full_range_recorded(instance, create_full_range_run(instance, tmp_path))


def create_full_range_run(instance: dg.DagsterInstance, tmp_path: Path) -> str:
    settings = Settings.model_validate({"TVDB_IMAGES_DATA_DIR": str(tmp_path / "data")})
    job = build_definitions(settings).resolve_job_def("sync_images")
    return instance.create_run_for_job(job, tags={**job.tags, **FULL_RANGE}).run_id


def assert_full_range_recorded(instance: dg.DagsterInstance, run_id: str) -> None:
    """3 planned materializations per partition, and each partitioned check's planned event as a row
    per partition holding that same event."""
    partitions = len(artwork_partitions.get_partition_keys())
    logs = [entry for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
    planned = [
        e for e in logs if e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ]
    checks = [
        e for e in logs if e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ]
    assert partitions == 1280 and len(planned) == 3 * partitions
    with instance._event_storage.index_connection() as conn:
        rows = conn.execute(
            select(
                AssetCheckExecutionsTable.c.check_name, AssetCheckExecutionsTable.c.evaluation_event
            ).where(AssetCheckExecutionsTable.c.run_id == run_id)
        ).all()
    assert len(checks) >= 2 and len(rows) == len(checks) * partitions
    by_check = {entry.dagster_event.asset_check_planned_data.check_name: entry for entry in checks}
    for check_name, serialized in rows:
        assert deserialize_value(serialized, dg.EventLogEntry) == by_check[check_name]
    record = instance.get_latest_planned_materialization_info(
        dg.AssetKey("source_images"), partition="series|ff"
    )
    assert record is not None and record.run_id == run_id
