"""Dagster's PostgreSQL storage, with its connections kept open in each process.

dagster-postgres opens a new PostgreSQL connection for every read and write outside the webserver
(SQLAlchemy's NullPool), so that idle processes hold none, and asks PostgreSQL whether the
`asset_event_tags` table exists before every partitioned materialization it records. A run records
two events per partition for every asset in it (planned, then materialized): one `sync_images` run
over 64 partitions opened about 950 connections, 3.3 s of connecting in the run process and a
PostgreSQL backend started for each (docs/performance.md, section 3).

This storage keeps, per process, one connection for each of the three storages (more while several
threads write at once), checks it before use and recycles it hourly, as dagster-webserver already
does for itself; and it remembers tables it has seen exist. Selected in dagster/dagster.yaml under
`storage: custom:` with the settings of `storage: postgres:` (postgres_url, or postgres_db).

With `DAGSTER_EVENT_BATCH_SIZE` set (the image sets it), Dagster hands a ranged run's per-partition
events to the storage in batches: dagster-postgres writes a batch of materializations in one
statement, and this storage does the same for the batch of "planned" events a run records when it
starts, which dagster-postgres would otherwise write one by one, several round trips each, and for the
batch of per-partition check evaluations a ranged run's checks record (tvdb_images/defs/check_results.py).

It relies on dagster-postgres internals (`_engine`, `_connect`, `_store_asset_event`, ...);
tvdb_images_tests/defs/test_deployment_internals.py fails, naming what changed, when an upgrade moves them.
Upstream issues whose fixes would retire it: planned events written one by one when a run is created,
https://github.com/dagster-io/dagster/issues/33831 (fix proposed in
https://github.com/dagster-io/dagster/pull/33832, batching planned asset and check events in
dagster-postgres); a new connection per event, https://github.com/dagster-io/dagster/issues/20325
(pool settings in dagster.yaml: https://github.com/dagster-io/dagster/issues/33935).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any, cast

from dagster import AssetKey, DagsterEventType, EventLogEntry
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy import BigInteger, DateTime, Engine, String, Text, column, values

from tvdb_images.deployment.check_events import PlannedChecksSerializedOnce

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4


class ExistingTablesRemembered:
    """An event log that asks its database whether a table exists once, not before every write: a
    table appears only through a migration (Dagster asks once per partitioned event)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._existing_tables: set[str] = set()
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._existing_tables:
            return True
        exists = super().has_table(table_name)  # type: ignore[misc]  # a mixin: the event log has it
        if exists:
            self._existing_tables.add(table_name)
        return exists

    def wipe(self) -> None:
        super().wipe()  # type: ignore[misc]  # a mixin: the event log has it
        self._existing_tables.clear()


def pooled_engine(postgres_url: str, token_provider: Any) -> Engine:
    return create_pg_engine(
        postgres_url,
        token_provider,
        isolation_level="AUTOCOMMIT",
        pool_size=1,
        max_overflow=MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_pre_ping=True,  # a connection the server dropped is replaced, not failed on
    )


class BatchingEventLogStorage(ExistingTablesRemembered, PlannedChecksSerializedOnce, PostgresEventLogStorage):
    """The event log, writing a batch of planned events at once and remembering which tables exist (a
    table appears only through a migration, and the answer was asked of PostgreSQL once per
    partitioned event); a partitioned check's planned event is serialized once (check_events.py)."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if events and all(_is_check_evaluation(event) for event in events):
            self._store_check_evaluation_batch(events)
            return
        if not any(_is_planned_asset_event(event) for event in events):
            super().store_event_batch(events)
            return
        # A run's planned batch also holds its asset checks' planned events: those keep their place
        # in the order and are stored one by one, as dagster-postgres stores them.
        for planned, group in groupby(events, key=_is_planned_asset_event):
            if planned:
                self._store_planned_batch(list(group))
            else:
                for event in group:
                    self.store_event(event)

    def _store_planned_batch(self, events: Sequence[EventLogEntry]) -> None:
        """What `store_event` does for each planned event, in one insert and one transaction.

        A planned event writes its event row, and sets its asset's `last_run_id` and latest event
        time; after a batch only the last event of each asset decides those, exactly as
        dagster-postgres's own batch of materializations does.
        """
        statement = self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
        with self._connect() as conn:
            event_ids = [int(row[0]) for row in conn.execute(statement).fetchall()]
        last_by_asset: dict[AssetKey, tuple[EventLogEntry, int]] = {}
        for event, event_id in zip(events, event_ids, strict=True):
            last_by_asset[event.get_dagster_event().asset_key] = (event, event_id)  # type: ignore[index]  # asset events have a key
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in last_by_asset.values():
                self._store_asset_event(conn, event, event_id)

    def _store_check_evaluation_batch(self, events: Sequence[EventLogEntry]) -> None:
        """What `store_event` does for each check evaluation of one check step (its event row, then
        its planned row in the check executions table resolved), in one insert and one update.

        A row that was not planned (none matched the update) is stored as dagster-postgres stores it.
        """
        statement = self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
        with self._connect() as conn:
            event_ids = [int(row[0]) for row in conn.execute(statement).fetchall()]
        evaluations = [
            cast("AssetCheckEvaluation", e.get_dagster_event().event_specific_data) for e in events
        ]
        keys = {
            (e.asset_key.to_string(), e.check_name, event.run_id)
            for e, event in zip(evaluations, events, strict=True)
        }
        partitions = [e.partition for e in evaluations]
        updated: set[str] = set()
        if len(keys) == 1 and None not in partitions and len(set(partitions)) == len(partitions):
            updated = self._resolve_planned_rows(next(iter(keys)), events, evaluations, event_ids)
        for event, evaluation, event_id in zip(events, evaluations, event_ids, strict=True):
            if evaluation.partition not in updated:
                self.store_asset_check_event(event, event_id)

    def _resolve_planned_rows(
        self,
        key: tuple[str, str, str],
        events: Sequence[EventLogEntry],
        evaluations: Sequence[AssetCheckEvaluation],
        event_ids: Sequence[int],
    ) -> set[str]:
        """Dagster's update of a check's planned row, for every partition at once; the partitions done."""
        table = AssetCheckExecutionsTable
        rows = values(
            column("partition", Text),
            column("status", String),
            column("event", Text),
            column("timestamp", DateTime),
            column("event_id", BigInteger),
            column("materialization_id", BigInteger),
            name="evaluations",
        ).data(
            [
                (
                    evaluation.partition,
                    (
                        AssetCheckExecutionRecordStatus.SUCCEEDED.value
                        if evaluation.passed
                        else AssetCheckExecutionRecordStatus.FAILED.value
                    ),
                    serialize_value(event),
                    self._event_insert_timestamp(event),
                    event_id,
                    target.storage_id if (target := evaluation.target_materialization_data) else None,
                )
                for event, evaluation, event_id in zip(events, evaluations, event_ids, strict=True)
            ]
        )
        asset_key, check_name, run_id = key
        statement = (
            table.update()
            .where(
                table.c.asset_key == asset_key,
                table.c.check_name == check_name,
                table.c.run_id == run_id,
                table.c.partition == rows.c.partition,
            )
            .values(
                execution_status=rows.c.status,
                evaluation_event=rows.c.event,
                evaluation_event_timestamp=rows.c.timestamp,
                evaluation_event_storage_id=rows.c.event_id,
                materialization_event_storage_id=rows.c.materialization_id,
            )
            .returning(table.c.partition)
        )
        with self.index_transaction() as conn:
            return {row[0] for row in conn.execute(statement)}


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose run, event log and schedule storages pool their connections."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PostgresRunStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._event_log_storage = BatchingEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage._engine.dispose()
            storage._engine = pooled_engine(postgres_url, token_provider)
        DagsterStorage.__init__(self)  # type: ignore[arg-type]  # skips the parent __init__ on purpose; mypy cannot bind its generic self

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


def _is_check_evaluation(event: EventLogEntry) -> bool:
    dagster_event = event.dagster_event
    return dagster_event is not None and dagster_event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION


def _is_planned_asset_event(event: EventLogEntry) -> bool:
    dagster_event = event.dagster_event
    return (
        dagster_event is not None
        and dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        and dagster_event.asset_key is not None
    )
