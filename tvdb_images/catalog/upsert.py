"""INSERT ... ON CONFLICT DO UPDATE for the two catalog dialects (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(
    session: Session,
    model: type[Any],
    rows: Sequence[dict[str, Any]],
    *,
    index_elements: Sequence[str],
    update_columns: Sequence[str],
) -> Any:
    """A statement inserting `rows`, updating `update_columns` where `index_elements` already exist."""
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(model).values(list(rows))
    elif dialect == "sqlite":
        statement = sqlite.insert(model).values(list(rows))
    else:  # pragma: no cover - the project supports these two
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(index_elements),
        set_={column: getattr(excluded, column) for column in update_columns},
    )
