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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy import Engine

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4


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


class TableCachingEventLogStorage(PostgresEventLogStorage):
    """The event log, remembering which tables exist: a table appears only through a migration, and
    the answer was asked of PostgreSQL once per partitioned event."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._existing_tables: set[str] = set()
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._existing_tables:
            return True
        exists = super().has_table(table_name)
        if exists:
            self._existing_tables.add(table_name)
        return exists

    def wipe(self) -> None:
        super().wipe()
        self._existing_tables.clear()


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
        self._event_log_storage = TableCachingEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage._engine.dispose()
            storage._engine = pooled_engine(postgres_url, token_provider)
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
