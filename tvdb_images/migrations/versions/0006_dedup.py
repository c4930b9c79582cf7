"""Exact deduplication: rendition rows may point at objects stored under another artwork's path.

`shared` marks those rows (orphan cleanup finds them by key prefix through a partial index), and an
index on (source_checksum, render_signature) finds an artwork already rendered from the same bytes
with the same settings. Existing rows all point at their own artwork's objects: `shared` is false.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artwork_renditions") as batch:
        batch.add_column(sa.Column("shared", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_artwork_renditions_shared_key",
        "artwork_renditions",
        ["storage_key"],
        postgresql_where=sa.text("shared"),
        postgresql_ops={"storage_key": "text_pattern_ops"},
        sqlite_where=sa.text("shared"),
    )
    op.create_index(
        "ix_artwork_renditions_dedup", "artwork_renditions", ["source_checksum", "render_signature"]
    )


def downgrade() -> None:
    op.drop_index("ix_artwork_renditions_dedup", table_name="artwork_renditions")
    op.drop_index("ix_artwork_renditions_shared_key", table_name="artwork_renditions")
    with op.batch_alter_table("artwork_renditions") as batch:
        batch.drop_column("shared")
