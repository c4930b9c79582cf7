"""Dagster's SQLite storage (the embedded default), writing a batch of asset events in one transaction.

Creating a run over 128 partitions of the three sync assets records 384 "planned" events before the
run is even queued, and its steps record as many materializations. Dagster's SQLite event log opens
an engine, a connection and a transaction (one fsync) per event and shard, about 40-90 ms an event on
a busy 2-core machine: the backfill daemon took 9-88 s to submit each run of a 1,280-partition
backfill, and its progress stays at 0% until the last run is submitted (docs/operations.md,
"Backfill progress"). Given a batch, this storage does the same writes in one transaction per shard.

Dagster hands events to the storage in batches only with `DAGSTER_EVENT_BATCH_SIZE` set, which the
Docker image sets for production; this storage sets it for the processes that load it (webserver,
daemon, code servers, runs), unless it is set already. Selected in the top-level dagster.yaml under
`storage: custom:`; the files are those of Dagster's default storage, under DAGSTER_HOME.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from dagster import EventLogEntry, Field, StringSource
from dagster._config import UserConfigSchema
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData

EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
# A run's planned events (3 assets x 128 partitions, plus its checks) fit in one batch.
DEFAULT_EVENT_BATCH_SIZE = "1000"


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite's event log, storing a batch of one run's asset events in one transaction per shard."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # A run's planned batch also holds its asset checks' planned events: those keep their place in
        # the order and are stored one by one, as Dagster stores them.
        for asset_events, group in groupby(events, key=_is_asset_event):
            batch = list(group)
            if asset_events and len({event.run_id for event in batch}) == 1:
                self._store_asset_batch(batch)
            else:
                for event in batch:
                    self.store_event(event)

    def _store_asset_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The writes `SqliteEventLogStorage.store_event` makes for each asset event, in one transaction
        per shard: the run's shard, then the cross-run index with every event's tags.

        An event also updates its asset's row (latest event, run); after a batch only the last event
        of each asset and kind decides it, as dagster-postgres's own batch of materializations does.
        """
        rows = [self._event_to_row(event) for event in events]  # each event serialized once
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert().values(rows))
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().values(rows).returning(SqlEventLogStorageTable.c.id)
            )
            # Row ids of one multi-row insert are assigned in the order of its rows (the index shard
            # is locked for the transaction); RETURNING itself promises no order.
            event_ids = sorted(int(row[0]) for row in inserted.fetchall())
            self._store_asset_event_tags(conn, events, event_ids)
            last: dict[tuple[object, object], tuple[EventLogEntry, int]] = {}
            for event, event_id in zip(events, event_ids, strict=True):
                last[(event.get_dagster_event().asset_key, event.dagster_event_type)] = (event, event_id)
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)


class BatchingSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` whose event log writes batches of asset events in one transaction."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        os.environ.setdefault(EVENT_BATCH_SIZE_VARIABLE, DEFAULT_EVENT_BATCH_SIZE)
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchingSqliteEventLogStorage(os.path.join(base_dir, "history", "runs"))

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteStorage:
        return cls.from_local(str(config_value.get("base_dir") or default_base_dir()), inst_data=inst_data)


def default_base_dir() -> Path:
    """DAGSTER_HOME; else, as under `dagster dev` without one, the data directory's `dagster_home`
    (where `tvdb-images demo` keeps it), resolved against the working directory that every process
    of one `dagster dev` shares."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    return (Path(os.environ.get("TVDB_IMAGES_DATA_DIR") or ".tvdb_images") / "dagster_home").resolve()


def _is_asset_event(event: EventLogEntry) -> bool:
    return event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
