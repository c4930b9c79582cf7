"""Placeholders: each artwork's ThumbHash, BlurHash and dominant colour, computed by the render.

Artwork rendered before this revision has none until it is rendered again: ENGINE_VERSION 3 changes
the render signature, so `rerender_images` (or the next sync's re-render) fills them in.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        batch.add_column(sa.Column("thumbhash", sa.String(64)))
        batch.add_column(sa.Column("blurhash", sa.String(200)))
        batch.add_column(sa.Column("dominant_color", sa.String(7)))


def downgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        batch.drop_column("dominant_color")
        batch.drop_column("blurhash")
        batch.drop_column("thumbhash")
