"""Engines and sessions for the catalog database: SQLite (embedded default) or PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs, the driver this project installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_catalog_engine(url: str, *, pool_size: int = 10, pool_pre_ping: bool = True) -> Engine:
    """An engine tuned for the pipeline: WAL and a busy timeout on SQLite, pre-ping on PostgreSQL
    (a round trip per checkout; callers that retry a dropped connection themselves turn it off)."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=pool_pre_ping, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Catalog:
    """The catalog database: one engine and a session factory, shared by a process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_database_url(url)
        self.engine = create_catalog_engine(self.url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
