"""Batch the pipeline's catalog writes: one transaction per batch instead of one per artwork.

Writes are only recorded after their objects are stored, so losing a batch (the database went away)
loses no image: the rows stay as they were and the next run redoes that work. A dropped connection is
retried a few times first, because a restarting PostgreSQL is usually back within seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog
from tvdb_images.pipeline.report import StageReport
from tvdb_images.retrying import doubling, retrying

log = logging.getLogger(__name__)

CatalogWrite = Callable[[Session], None]
# Waits of 0.5, 1, 2 and 4 s with the default 4 retries: PostgreSQL restarting is usually back by then.
FIRST_WAIT_SECONDS = 0.5


class CatalogWriter:
    def __init__(
        self,
        catalog: Catalog,
        report: StageReport,
        *,
        batch_size: int = 50,
        max_delay_seconds: float = 1.0,
        retries: int = 4,
        after_flush: Callable[[Session, list[CatalogWrite]], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.report = report
        self.batch_size = batch_size
        self.max_delay_seconds = max_delay_seconds
        self.retries = retries
        self.after_flush = after_flush
        self._retrying = retrying(
            attempts=retries + 1,
            retry_on=_is_connection_problem,
            wait=doubling(FIRST_WAIT_SECONDS),
            on_retry=_log_retry,
        )
        self._pending: list[CatalogWrite] = []
        self._oldest: float | None = None

    def add(self, write: CatalogWrite) -> None:
        self._pending.append(write)
        if self._oldest is None:
            self._oldest = time.monotonic()
        if len(self._pending) >= self.batch_size or time.monotonic() - self._oldest >= self.max_delay_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        writes, self._pending, self._oldest = self._pending, [], None
        self._retrying(self._write, writes)

    def _write(self, writes: list[CatalogWrite]) -> None:
        with self.report.timed("catalog"), self.catalog.session() as session:
            for write in writes:
                write(session)
            if self.after_flush is not None:
                self.after_flush(session, writes)

    def __enter__(self) -> CatalogWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Record what finished even when the stage stops early: those objects are already stored.
        if exc_type is None:
            self.flush()
            return
        try:
            self.flush()
        except Exception:  # the original error is the one to report
            log.exception("could not record the last batch while stopping on an error")


def _is_connection_problem(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):  # OperationalError is one
        return False
    return bool(getattr(exc, "connection_invalidated", False)) or isinstance(exc, OperationalError)


def _log_retry(attempt: int, exc: BaseException, delay: float) -> None:
    log.warning("catalog write failed (%s); retrying in %.1fs", exc.__class__.__name__, delay)
