"""The embedded default's SQLite storage: a run's batch of asset events is stored in one transaction
per shard, and Dagster reads back exactly what its own one-by-one storage records."""

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tvdb_images.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, artwork_partitions
from tvdb_images.defs.sqlite_storage import BatchingSqliteEventLogStorage, BatchingSqliteStorage
from tvdb_images_tests.dagster_ui import EMBEDDED_INSTANCE

POLICY = dg.BackfillPolicy.multi_run(128)


@dg.asset(partitions_def=artwork_partitions, backfill_policy=POLICY)
def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})


@dg.asset(
    deps=[upstream], partitions_def=artwork_partitions, backfill_policy=dg.BackfillPolicy.multi_run(128)
)
def downstream() -> None:
    return None


JOB = dg.Definitions(
    assets=[upstream, downstream], jobs=[dg.define_asset_job("both", selection=[upstream, downstream])]
).resolve_job_def("both")
RANGE = {RANGE_START_TAG: "series|00", RANGE_END_TAG: "series|1f"}


def _instance(home: Path, storage: dict | None) -> dg.DagsterInstance:  # type: ignore[type-arg]
    home.mkdir(parents=True, exist_ok=True)
    config = {"telemetry": {"enabled": False}}
    if storage is not None:
        config["storage"] = storage
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def _recorded(instance: dg.DagsterInstance) -> dict[str, object]:
    run = JOB.execute_in_process(instance=instance, tags=RANGE)
    assert run.success
    facts: dict[str, object] = {}
    for asset in ("upstream", "downstream"):
        key = dg.AssetKey(asset)
        planned = instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key),
            limit=1000,
        )
        facts[asset] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "planned": sorted(r.partition_key for r in planned),
            "last_run": instance.get_asset_records([key])[0].asset_entry.last_run_id == run.run_id,
            "latest_partition": instance.get_latest_materialization_event(key).dagster_event.partition,  # type: ignore[union-attr]
        }
    return facts


def test_batched_storage_records_what_dagster_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    custom = {"custom": {"module": "tvdb_images.defs.sqlite_storage", "class": "BatchingSqliteStorage"}}
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "batched"))
    batched = _instance(tmp_path / "batched", custom)
    assert isinstance(batched.get_ref().storage, BatchingSqliteStorage)
    assert isinstance(batched.event_log_storage, BatchingSqliteEventLogStorage)
    calls: list[int] = []
    original = BatchingSqliteEventLogStorage._store_asset_batch

    def counting(self, events):  # type: ignore[no-untyped-def]
        calls.append(len(events))
        original(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_batch", counting)
    with_batches = _recorded(batched)
    plain = _recorded(_instance(tmp_path / "plain", None))  # Dagster's own SQLite storage
    assert with_batches == plain
    keys = [f"series|{i:02x}" for i in range(32)]
    assert with_batches["upstream"]["materialized"] == keys  # type: ignore[index]
    assert with_batches["downstream"]["planned"] == keys  # type: ignore[index]
    # The run's 64 planned events went in one batch, each step's 32 materializations in another.
    assert 64 in calls and calls.count(32) >= 2, calls


def test_the_embedded_instance_uses_the_batching_storage_and_sets_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(EMBEDDED_INSTANCE.read_text())
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) >= 3 * 128 + 2  # a run's planned events
    assert (tmp_path / "history" / "runs.db").exists()  # Dagster's layout, under DAGSTER_HOME
