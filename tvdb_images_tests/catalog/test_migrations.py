"""Alembic: `alembic upgrade head` from the repository root works, and migrations match the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from tvdb_images.catalog import migrate
from tvdb_images.catalog.models import Base

REPO = Path(__file__).resolve().parents[2]


def _assert_no_drift(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"series", "movies", "episodes", "seasons", "people", "artwork", "artwork_renditions"} <= tables
    assert {"artwork_views", "artwork_view_flushes"} <= tables


def test_alembic_command_from_repo_root_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = dict(os.environ, DATABASE_URL=url)
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "upgrade", "head"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    _assert_no_drift(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_migrations_up_and_down_on_postgresql(postgres_url: str) -> None:
    # The template is already at head: go down to nothing and back up again.
    migrate.command.downgrade(migrate.alembic_config(postgres_url), "base")
    assert migrate.current_revision(postgres_url) is None
    migrate.upgrade(postgres_url)
    _assert_no_drift(postgres_url)
