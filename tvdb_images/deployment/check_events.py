"""Planned asset-check events written without serializing the same event once per partition.

Dagster (1.13.27) records a partitioned check's planned event as one row per partition, and
serializes the whole event, partition subset included, again for every row: a run over all 1,280
partitions serialized two 1,280-key events 1,280 times each, most of the time left in creating such
a run once the planned materializations are batched. The serialized text is the same every time;
this writes the same rows with it computed once. Shared by the SQLite and PostgreSQL event logs.
"""

from __future__ import annotations

from typing import Any, cast

from dagster import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import serialize_value


class PlannedChecksSerializedOnce:
    """Mixin for a `SqlEventLogStorage` subclass (placed before it in the bases)."""

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        storage = cast(Any, self)
        planned = cast(Any, event.get_dagster_event().event_specific_data)
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        serialized = serialize_value(event)
        timestamp = storage._event_insert_timestamp(event)
        rows = [
            {
                "asset_key": planned.asset_key.to_string(),
                "check_name": planned.check_name,
                "partition": partition_key,
                "run_id": event.run_id,
                "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                "evaluation_event": serialized,
                "evaluation_event_timestamp": timestamp,
                "evaluation_event_storage_id": event_id,
            }
            for partition_key in partition_keys
        ]
        with storage.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert().values(rows))
