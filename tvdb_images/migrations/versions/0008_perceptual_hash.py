"""Near-duplicates: a 64-bit perceptual hash (pHash) per artwork, computed by the render.

Stored signed (BIGINT has no unsigned form). No index: clusters are found by reading every hash once
and comparing them in memory (`catalog.near_duplicates`), which an index on equality would not help.
Existing rows have none until their next render.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("artwork", sa.Column("perceptual_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite >= 3.35 has DROP COLUMN), never batch "move and copy": recreating
    # `artwork` on SQLite would drop the status count triggers of migration 0007.
    op.execute("ALTER TABLE artwork DROP COLUMN perceptual_hash")
