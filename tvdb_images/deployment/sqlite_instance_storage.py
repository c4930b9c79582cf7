"""Dagster's SQLite storage (the embedded default), writing a run's "planned" events in batches.

When a run over partitions is created, Dagster records one "materialization planned" event per asset
and partition before the run starts: 3,843 for `sync_images` over all 1,280 partitions. Dagster's
SQLite event log stores each one on its own, with a fresh connection (and commit) to the run's
database and another to the index database, so `dagster job launch` over every partition spent
minutes before its run was even queued (docs/operations.md, "One run over a whole range").

This storage stores such a batch with one connection and transaction per database, as
tvdb_images/deployment/instance_storage.py does for PostgreSQL, and remembers which tables exist (the
SQLite storage opens a connection to ask for every partitioned event); the planned events of asset
checks are serialized once, not once per partition (tvdb_images/deployment/check_events.py). Everything
else is Dagster's own `DagsterSqliteStorage`, with the same files under the same base directory,
so an existing DAGSTER_HOME keeps its history. Dagster hands events to a storage in batches only
when `DAGSTER_EVENT_BATCH_SIZE` is set; loading this storage sets it (unless the environment already
does), so every process that opens the instance (`dagster dev`, `dagster job launch`, run workers)
batches. Selected in the top-level dagster.yaml under `storage: custom:`.

Like the PostgreSQL storage it relies on Dagster internals
(tvdb_images_tests/defs/test_deployment_internals.py names any an upgrade changes). The upstream issue
whose fix would retire it:
https://github.com/dagster-io/dagster/issues/33831 (planned events written one by one when a run is
created; the proposed fix, https://github.com/dagster-io/dagster/pull/33832, hands them to the storage
in batches always, and batches them in dagster-postgres only).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from dagster import AssetKey, EventLogEntry, Field, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils import mkdir_p

from tvdb_images.deployment.check_events import PlannedChecksSerializedOnce
from tvdb_images.deployment.instance_storage import ExistingTablesRemembered, _is_planned_asset_event

# The image's value for PostgreSQL (Dockerfile): a full-range run's planned events in four batches.
EVENT_BATCH_SIZE = 1000


class BatchingSqliteEventLogStorage(
    ExistingTablesRemembered, PlannedChecksSerializedOnce, SqliteEventLogStorage
):
    """The SQLite event log, writing a batch of planned events with one transaction per database
    (and a partitioned check's planned event serialized once, not once per partition)."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not any(_is_planned_asset_event(event) for event in events):
            super().store_event_batch(events)
            return
        # Asset checks' planned events keep their place in the order and are stored one by one.
        for planned, group in groupby(events, key=_is_planned_asset_event):
            if planned:
                for _, same_run in groupby(group, key=lambda event: event.run_id):
                    self._store_planned_batch(list(same_run))
            else:
                for event in group:
                    self.store_event(event)

    def _store_planned_batch(self, events: Sequence[EventLogEntry]) -> None:
        """What `store_event` does for each planned event: a row in the run's database, its mirror in
        the index database (ids from there), tags, and the asset's `last_run_id` and latest event
        time, which after a batch only the last event of each asset decides."""
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        returning = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        with self.index_transaction() as conn:
            event_ids = [int(row[0]) for row in conn.execute(returning, rows).fetchall()]
            self._store_asset_event_tags(conn, events, event_ids)
            last_by_asset: dict[AssetKey, tuple[EventLogEntry, int]] = {}
            for event, event_id in zip(events, event_ids, strict=True):
                last_by_asset[event.get_dagster_event().asset_key] = (event, event_id)  # type: ignore[index]  # asset events have a key
            for event, event_id in last_by_asset.values():
                self._store_asset_event(conn, event, event_id)


def default_base_dir() -> Path:
    """DAGSTER_HOME; without it (Dagster's CLI then reads dagster.yaml from the working directory and
    would keep everything in a temporary directory), the demo's instance directory,
    `$TVDB_IMAGES_DATA_DIR/dagster_home` (`.tvdb_images/dagster_home`), so `dagster dev -w workspace.yaml`
    from the repository root shows the demo's runs and keeps its history."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("TVDB_IMAGES_DATA_DIR") or ".tvdb_images").resolve() / "dagster_home"


class BatchingSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` whose event log writes planned events in batches (config: `base_dir`)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
        self.base_dir = base_dir
        # `dagster dev` starts the webserver and the daemon at once; on a new DAGSTER_HOME both would
        # create and stamp the same SQLite files (two rows in a file's alembic_version, and the code
        # location then fails to load). One process at a time opens them.
        mkdir_p(base_dir)
        with open(Path(base_dir) / ".storage.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
            self._event_log_storage = BatchingSqliteEventLogStorage(_event_logs_directory(base_dir))
            self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)  # type: ignore[arg-type]  # skips the parent __init__ on purpose; mypy cannot bind its generic self

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteStorage:
        base_dir = str(config_value.get("base_dir") or default_base_dir())
        mkdir_p(base_dir)
        return cls(base_dir, inst_data=inst_data)
