"""View analytics: views per artwork, size and UTC day, added to in batches by the serving API, and
each serving worker's flush watermark per day (what "the day's counts are complete" is checked by).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artwork_views",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("artwork_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "artwork_id", "size", name="pk_artwork_views"),
    )
    op.create_index("ix_artwork_views_artwork_id", "artwork_views", ["artwork_id"])
    op.create_table(
        "artwork_view_flushes",
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("flushed_through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("worker", "day", name="pk_artwork_view_flushes"),
    )


def downgrade() -> None:
    op.drop_table("artwork_view_flushes")
    op.drop_index("ix_artwork_views_artwork_id", table_name="artwork_views")
    op.drop_table("artwork_views")
