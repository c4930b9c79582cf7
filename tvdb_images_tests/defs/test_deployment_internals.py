"""The Dagster internals tvdb_images/deployment/ relies on are still the ones it was written against.

Its storages subclass Dagster's SQLite and PostgreSQL storages, override private methods, call
others, and do for a batch what a few of Dagster's own methods do for one event. Dagster promises
none of this; after an upgrade that moves any of it these tests fail, naming what changed and which
code of ours depends on it, where the storages would otherwise go on recording events differently
(or no faster) without a word. Expected values: dagster 1.13.27, dagster-postgres 0.29.27.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

import dagster
import dagster._core.storage.sqlite_storage as sqlite_storage
import dagster_postgres
import dagster_postgres.utils as postgres_utils
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)

from tvdb_images.deployment.instance_storage import BatchingEventLogStorage, PooledPostgresStorage
from tvdb_images.deployment.sqlite_instance_storage import (
    BatchingSqliteEventLogStorage,
    BatchingSqliteStorage,
)

WRITTEN_AGAINST = "dagster 1.13.27 / dagster-postgres 0.29.27"
PG = "instance_storage.py"
SQLITE = "sqlite_instance_storage.py"
CHECKS = "check_events.py"

# (owner, name): its parameters when the deployment was written, and what of ours uses it.
SIGNATURES: dict[tuple[Any, str], tuple[tuple[str, ...], str]] = {
    (SqlEventLogStorage, "has_table"): (("self", "table_name"), "overridden by ExistingTablesRemembered"),
    (SqlEventLogStorage, "wipe"): (("self",), "overridden by ExistingTablesRemembered"),
    (SqlEventLogStorage, "store_event"): (("self", "event"), f"called in {PG} and {SQLITE}"),
    (SqlEventLogStorage, "store_event_batch"): (("self", "events"), "overridden by both batching event logs"),
    (SqlEventLogStorage, "_store_asset_check_evaluation_planned"): (
        ("self", "event", "event_id"),
        f"overridden by PlannedChecksSerializedOnce ({CHECKS})",
    ),
    (SqlEventLogStorage, "prepare_insert_event_batch"): (("self", "events"), f"called in {PG}"),
    (SqlEventLogStorage, "index_transaction"): (("self",), f"called in {PG} and {SQLITE}"),
    (SqlEventLogStorage, "index_connection"): (("self",), f"called in {CHECKS}"),
    (SqlEventLogStorage, "_store_asset_event_tags"): (
        ("self", "conn", "events", "event_ids"),
        f"called in {PG} and {SQLITE}",
    ),
    (SqlEventLogStorage, "_store_asset_event"): (
        ("self", "conn", "event", "event_id"),
        f"called in {PG} and {SQLITE}",
    ),
    (SqlEventLogStorage, "store_asset_check_event"): (("self", "event", "event_id"), f"called in {PG}"),
    (SqlEventLogStorage, "_event_insert_timestamp"): (("self", "event"), f"called in {PG} and {CHECKS}"),
    (SqlEventLogStorage, "_event_to_row"): (("self", "event"), f"called in {SQLITE}"),
    (PostgresEventLogStorage, "__init__"): (
        ("self", "postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
        f"called in {PG}",
    ),
    (PostgresEventLogStorage, "_connect"): (("self",), f"called in {PG}"),
    (PostgresRunStorage, "__init__"): (
        ("self", "postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
        f"called in {PG}",
    ),
    (PostgresScheduleStorage, "__init__"): (
        ("self", "postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
        f"called in {PG}",
    ),
    (DagsterPostgresStorage, "__init__"): (
        ("self", "postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
        "replaced by PooledPostgresStorage.__init__",
    ),
    (DagsterPostgresStorage, "from_config_value"): (
        ("cls", "inst_data", "config_value"),
        f"overridden in {PG}",
    ),
    (SqliteEventLogStorage, "__init__"): (("self", "base_dir", "inst_data"), f"called in {SQLITE}"),
    (SqliteEventLogStorage, "run_connection"): (("self", "run_id"), f"called in {SQLITE}"),
    (DagsterSqliteStorage, "__init__"): (
        ("self", "base_dir", "inst_data"),
        "replaced by BatchingSqliteStorage.__init__",
    ),
    (DagsterSqliteStorage, "from_config_value"): (
        ("cls", "inst_data", "config_value"),
        f"overridden in {SQLITE}",
    ),
    (DagsterSqliteStorage, "config_type"): (("cls",), f"overridden in {SQLITE}"),
    (SqliteRunStorage, "from_local"): (("cls", "base_dir", "inst_data"), f"called in {SQLITE}"),
    (SqliteScheduleStorage, "from_local"): (("cls", "base_dir", "inst_data"), f"called in {SQLITE}"),
    (DagsterStorage, "__init__"): (("self",), f"called in {PG} and {SQLITE}"),
    (sqlite_storage, "_event_logs_directory"): (("base",), f"called in {SQLITE}"),
    (sqlite_storage, "_runs_directory"): (("base",), f"called in {SQLITE}"),
    (sqlite_storage, "_schedule_directory"): (("base",), f"called in {SQLITE}"),
    (postgres_utils, "create_pg_engine"): (
        ("postgres_url", "token_provider", "engine_kwargs"),
        f"called in {PG}",
    ),
    (postgres_utils, "pg_url_from_config"): (("config_value",), f"called in {PG}"),
    (postgres_utils, "get_token_provider_from_config"): (("config_value",), f"called in {PG}"),
}

# Dagster's code that ours does again for a batch (or in place of it): a digest of its source. A
# change means reading the new version against ours before updating the digest.
REIMPLEMENTED: dict[tuple[Any, str], tuple[str, str]] = {
    (PostgresEventLogStorage, "store_event"): (
        "21647c85c536",
        f"BatchingEventLogStorage's planned and check batches ({PG})",
    ),
    (PostgresEventLogStorage, "store_event_batch"): (
        "b907c7480f82",
        f"BatchingEventLogStorage.store_event_batch ({PG})",
    ),
    (SqliteEventLogStorage, "store_event"): (
        "41dae9e57125",
        f"BatchingSqliteEventLogStorage._store_planned_batch ({SQLITE})",
    ),
    (SqlEventLogStorage, "_store_asset_check_evaluation_planned"): (
        "e98c70e3f282",
        f"PlannedChecksSerializedOnce ({CHECKS})",
    ),
    (SqlEventLogStorage, "_update_asset_check_evaluation"): (
        "6703dae3c64e",
        f"BatchingEventLogStorage._resolve_planned_rows ({PG})",
    ),
    (DagsterPostgresStorage, "__init__"): ("587c0f0b1031", f"PooledPostgresStorage.__init__ ({PG})"),
    (DagsterSqliteStorage, "__init__"): ("c97bec75cbbe", f"BatchingSqliteStorage.__init__ ({SQLITE})"),
}

# Columns the batched statements name.
CHECK_EXECUTION_COLUMNS = {
    "asset_key", "check_name", "partition", "run_id", "execution_status", "evaluation_event",
    "evaluation_event_timestamp", "evaluation_event_storage_id", "materialization_event_storage_id",
}  # fmt: skip


def _where(owner: Any) -> str:
    return getattr(owner, "__qualname__", None) or owner.__name__


def _function(owner: Any, name: str) -> Any:
    found = inspect.getattr_static(owner, name)
    return getattr(found, "__func__", found)  # classmethods


def _fail_naming(changes: list[str]) -> None:
    installed = f"dagster {dagster.__version__} / dagster-postgres {dagster_postgres.__version__}"
    pytest.fail(
        f"Dagster internals that tvdb_images/deployment/ relies on changed ({WRITTEN_AGAINST} -> "
        f"{installed}); re-check the code named, or retire it if the upstream fix in its docstring "
        "has landed:\n  " + "\n  ".join(changes),
        pytrace=False,
    )


def test_methods_the_storages_override_or_call_keep_their_signatures() -> None:
    changes = []
    for (owner, name), (expected, used) in SIGNATURES.items():
        try:
            parameters = tuple(inspect.signature(_function(owner, name)).parameters)
        except AttributeError:
            changes.append(f"{_where(owner)}.{name} is gone ({used})")
            continue
        if parameters != expected:
            changes.append(f"{_where(owner)}.{name}{expected} is now {name}{parameters} ({used})")
    if changes:
        _fail_naming(changes)


def test_dagster_code_the_storages_redo_for_a_batch_is_unchanged() -> None:
    changes = []
    for (owner, name), (digest, ours) in REIMPLEMENTED.items():
        source = textwrap.dedent(inspect.getsource(_function(owner, name)))
        now = hashlib.sha256(source.encode()).hexdigest()[:12]
        if now != digest:
            changes.append(f"{_where(owner)}.{name} changed (digest {digest} -> {now}); ours: {ours}")
    if changes:
        _fail_naming(changes)


def test_tables_and_statuses_the_batches_write_are_unchanged() -> None:
    changes = []
    missing = CHECK_EXECUTION_COLUMNS - set(AssetCheckExecutionsTable.c.keys())
    if missing:
        changes.append(
            f"AssetCheckExecutionsTable lost columns {sorted(missing)} (written in {PG}, {CHECKS})"
        )
    if "id" not in SqlEventLogStorageTable.c:
        changes.append(f"SqlEventLogStorageTable has no `id` column (returned by the batch inserts in {PG})")
    for status in ("PLANNED", "SUCCEEDED", "FAILED"):
        if status not in AssetCheckExecutionRecordStatus.__members__:
            changes.append(f"AssetCheckExecutionRecordStatus.{status} is gone (written in {PG}, {CHECKS})")
    if changes:
        _fail_naming(changes)


def _parts(storage: DagsterStorage) -> dict[str, Any]:
    return {
        "run_storage": (storage.run_storage, storage.__dict__.get("_run_storage")),
        "event_log_storage": (storage.event_log_storage, storage.__dict__.get("_event_log_storage")),
        "schedule_storage": (storage.schedule_storage, storage.__dict__.get("_schedule_storage")),
    }


def _read_where_set(storage: DagsterStorage, changes: list[str], kind: str) -> None:
    """Dagster's storage properties still read the attributes our `__init__` sets."""
    for name, (read, assigned) in _parts(storage).items():
        if read is not assigned:
            changes.append(f"{kind}.{name} no longer reads `_{name}`, which our __init__ sets")


def test_the_sqlite_storage_puts_its_parts_where_dagster_reads_them(tmp_path: Path) -> None:
    storage = BatchingSqliteStorage(str(tmp_path))
    changes: list[str] = []
    _read_where_set(storage, changes, "DagsterSqliteStorage")
    if not isinstance(storage.event_log_storage, BatchingSqliteEventLogStorage):
        changes.append(f"the SQLite storage's event log is a {type(storage.event_log_storage).__name__}")
    for part, _ in _parts(storage).values():
        part.dispose()
    if changes:
        _fail_naming(changes)


@pytest.mark.services
def test_the_postgres_storage_puts_its_parts_where_dagster_reads_them(dagster_database: str) -> None:
    storage = PooledPostgresStorage(dagster_database)
    changes: list[str] = []
    _read_where_set(storage, changes, "DagsterPostgresStorage")
    if not isinstance(storage.event_log_storage, BatchingEventLogStorage):
        changes.append(f"the PostgreSQL storage's event log is a {type(storage.event_log_storage).__name__}")
    for name, (part, _) in _parts(storage).items():
        engine = getattr(part, "_engine", None)
        if engine is None:
            changes.append(f"{type(part).__name__} keeps no `_engine`, which PooledPostgresStorage replaces")
        elif getattr(engine.pool, "size", lambda: None)() != 1:
            changes.append(f"{name}'s engine is not the pooled one ({type(engine.pool).__name__})")
    for part, _ in _parts(storage).values():
        part.dispose()
    if changes:
        _fail_naming(changes)
