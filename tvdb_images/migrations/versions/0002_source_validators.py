"""Source revalidation and stale images: the origin's validators, when a source was last checked, and
since when the stored image no longer matches what its source names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artwork") as batch:
        batch.add_column(sa.Column("source_etag", sa.Text()))
        batch.add_column(sa.Column("source_last_modified", sa.Text()))
        batch.add_column(sa.Column("source_checked_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("stale_since", sa.DateTime(timezone=True)))
    # Sources stored before this revision count as checked when they were last attempted, so the first
    # revalidation pass spreads over SOURCE_REVALIDATE_DAYS instead of asking for everything at once.
    op.execute(
        "UPDATE artwork SET source_checked_at = last_attempt_at "
        "WHERE source_checksum IS NOT NULL AND last_attempt_at IS NOT NULL"
    )
    # An artwork left failed or gone with renditions of an earlier source was served as if it matched
    # its current source_url: from now on it is marked stale.
    op.execute(
        "UPDATE artwork SET stale_since = COALESCE(last_attempt_at, updated_at) "
        "WHERE status IN ('failed', 'gone') AND local_image_url IS NOT NULL"
    )
    op.create_index("ix_artwork_source_checked_at", "artwork", ["content_type", "shard", "source_checked_at"])


def downgrade() -> None:
    op.drop_index("ix_artwork_source_checked_at", table_name="artwork")
    with op.batch_alter_table("artwork") as batch:
        batch.drop_column("stale_since")
        batch.drop_column("source_checked_at")
        batch.drop_column("source_last_modified")
        batch.drop_column("source_etag")
