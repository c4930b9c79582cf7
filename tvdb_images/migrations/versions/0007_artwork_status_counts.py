"""Artwork counts by (content_type, status, failure_cause), kept by triggers so the catalog gauges
need no scan of the artwork table.

`artwork_status_counts` holds delta rows: triggers on `artwork` append +n/-n per group for every
write, and `tvdb_images.catalog.status_counts.fold` compacts them into one row per group. Appending
(never updating a shared row) keeps writers from queueing on a hot counter row. On PostgreSQL the
triggers are statement-level with transition tables, so a bulk insert or upsert of many rows appends
one grouped delta per group, not one per row; on SQLite they are row-level (SQLite has no transition
tables, and its writers are serialised anyway). TRUNCATE on PostgreSQL empties the counts.

The table is seeded from the current artwork rows. On PostgreSQL the migration's transaction holds
the trigger's lock on `artwork` from CREATE TRIGGER to commit, so no write slips between the seed
and the triggers. A later migration that recreates `artwork` on SQLite (batch "move and copy") drops
its triggers: it must create them again (tvdb_images_tests/catalog/test_migrations.py checks them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "content_type, status, failure_cause"
TRIGGERS = ("insert", "update", "delete")

# PostgreSQL: one function per event, reading the statement's transition tables.
PG_FUNCTIONS = {
    "insert": f"""
        INSERT INTO artwork_status_counts ({COLUMNS}, count)
        SELECT {COLUMNS}, count(*) FROM new_rows GROUP BY {COLUMNS};""",
    "update": f"""
        INSERT INTO artwork_status_counts ({COLUMNS}, count)
        SELECT {COLUMNS}, sum(n) FROM (
            SELECT {COLUMNS}, 1 AS n FROM new_rows
            UNION ALL
            SELECT {COLUMNS}, -1 AS n FROM old_rows
        ) AS changes
        GROUP BY {COLUMNS} HAVING sum(n) <> 0;""",
    "delete": f"""
        INSERT INTO artwork_status_counts ({COLUMNS}, count)
        SELECT {COLUMNS}, -count(*) FROM old_rows GROUP BY {COLUMNS};""",
    "truncate": """
        DELETE FROM artwork_status_counts;""",
}
PG_REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT",
    "delete": "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    "truncate": "FOR EACH STATEMENT",
}

# SQLite: row-level; an update that leaves the three columns alone appends nothing.
SQLITE_TRIGGERS = {
    "insert": f"""
        CREATE TRIGGER artwork_status_counts_insert AFTER INSERT ON artwork BEGIN
            INSERT INTO artwork_status_counts ({COLUMNS}, count)
            VALUES (NEW.content_type, NEW.status, NEW.failure_cause, 1);
        END""",
    "update": f"""
        CREATE TRIGGER artwork_status_counts_update
        AFTER UPDATE OF {COLUMNS} ON artwork
        WHEN OLD.content_type IS NOT NEW.content_type OR OLD.status IS NOT NEW.status
            OR OLD.failure_cause IS NOT NEW.failure_cause
        BEGIN
            INSERT INTO artwork_status_counts ({COLUMNS}, count)
            VALUES (OLD.content_type, OLD.status, OLD.failure_cause, -1),
                   (NEW.content_type, NEW.status, NEW.failure_cause, 1);
        END""",
    "delete": f"""
        CREATE TRIGGER artwork_status_counts_delete AFTER DELETE ON artwork BEGIN
            INSERT INTO artwork_status_counts ({COLUMNS}, count)
            VALUES (OLD.content_type, OLD.status, OLD.failure_cause, -1);
        END""",
}


def upgrade() -> None:
    op.create_table(
        "artwork_status_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("content_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_cause", sa.String(32), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artwork_status_counts"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for event, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION artwork_status_counts_{event}() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER artwork_status_counts_{event} AFTER {event.upper()} ON artwork "
                f"{PG_REFERENCING[event]} EXECUTE FUNCTION artwork_status_counts_{event}()"
            )
    else:
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)
    op.execute(
        f"INSERT INTO artwork_status_counts ({COLUMNS}, count) "
        f"SELECT {COLUMNS}, count(*) FROM artwork GROUP BY {COLUMNS}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in PG_FUNCTIONS:
            op.execute(f"DROP TRIGGER artwork_status_counts_{event} ON artwork")
            op.execute(f"DROP FUNCTION artwork_status_counts_{event}()")
    else:
        for event in TRIGGERS:
            op.execute(f"DROP TRIGGER artwork_status_counts_{event}")
    op.drop_table("artwork_status_counts")
