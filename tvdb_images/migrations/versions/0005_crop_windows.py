"""Crop windows: where each exact-box crop rendition (CROP_RENDITIONS) sits in an artwork's source.

The artwork's render signature widens to 255: it joins one signature per format with "+", and the
crops' "-c" and the watermark's "-w" parts make two formats' joined signature longer than 64.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        batch.add_column(sa.Column("crop_windows", sa.JSON(), nullable=True))
        batch.alter_column("render_signature", type_=sa.String(255), existing_type=sa.String(64))


def downgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        batch.drop_column("crop_windows")
        batch.alter_column("render_signature", type_=sa.String(64), existing_type=sa.String(255))
