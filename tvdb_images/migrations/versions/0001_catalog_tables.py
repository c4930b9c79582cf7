"""Catalog tables: the five content tables, artwork and artwork_renditions.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_TABLES = ("series", "movies", "episodes", "seasons", "people")
URL_COLUMNS = ("image_url", "poster_url", "banner_url", "fanart_url", "thumbnail_url")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    for table in CONTENT_TABLES:
        op.create_table(
            table,
            sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("name", sa.Text()),
            *[sa.Column(column, sa.Text()) for column in URL_COLUMNS],
            *[sa.Column(f"local_{column}", sa.Text()) for column in URL_COLUMNS],
            *_timestamps(),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        )

    op.create_table(
        "artwork",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("content_type", sa.String(16), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("image_type", sa.String(32), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("score", sa.Integer()),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("shard", sa.String(2)),
        sa.Column("storage_path", sa.Text()),
        sa.Column("local_image_url", sa.Text()),
        sa.Column("local_thumbnail_url", sa.Text()),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.Column("file_size", sa.BigInteger()),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("failure_cause", sa.String(32)),
        sa.Column("failure_detail", sa.Text()),
        sa.Column("failure_retryable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("source_checksum", sa.String(64)),
        sa.Column("source_format", sa.String(8)),
        sa.Column("source_width", sa.Integer()),
        sa.Column("source_height", sa.Integer()),
        sa.Column("render_signature", sa.String(64)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_artwork"),
        sa.UniqueConstraint("storage_path", name="uq_artwork_storage_path"),
    )
    op.create_index("ix_artwork_partition_status", "artwork", ["content_type", "shard", "status"])
    op.create_index("ix_artwork_content", "artwork", ["content_type", "content_id", "image_type"])
    op.create_index("ix_artwork_updated_at", "artwork", ["updated_at"])

    op.create_table(
        "artwork_renditions",
        sa.Column("artwork_id", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("source_checksum", sa.String(64), nullable=False),
        sa.Column("render_signature", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artwork_id"],
            ["artwork.id"],
            name="fk_artwork_renditions_artwork_id_artwork",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("artwork_id", "size", "format", name="pk_artwork_renditions"),
    )
    op.create_index("ix_artwork_renditions_storage_key", "artwork_renditions", ["storage_key"])


def downgrade() -> None:
    op.drop_table("artwork_renditions")
    op.drop_table("artwork")
    for table in CONTENT_TABLES:
        op.drop_table(table)
