"""The catalog's state as gauges: the backlog by status and failure cause, processed artwork by
content type, computed at scrape time and remembered for CATALOG_METRICS_SECONDS per process.

They are read from `artwork_status_counts` (`tvdb_images.catalog.status_counts`), which triggers on
the artwork table keep current: a sum over a few hundred rows, not a scan of every artwork. The
reading worker folds the delta rows in a background thread when they have piled up, so a scrape
never waits on the fold's write lock. Measured against the old grouped count
over the artwork table on a 1,000,000-artwork PostgreSQL catalog in docs/operations.md (Metrics). If
the catalog cannot be read, the last figures stay exported (their age says how old they are) and the
failure is logged; the scrape itself still answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from serving.metrics import PREFIX
from tvdb_images.catalog import status_counts
from tvdb_images.catalog.models import ArtworkStatus
from tvdb_images.config import CONTENT_TYPES
from tvdb_images.pipeline.causes import FAILURE_CAUSES

log = logging.getLogger(__name__)

_CAUSES = frozenset(FAILURE_CAUSES)
_STATUSES = frozenset(status.value for status in ArtworkStatus)


@dataclass(frozen=True)
class CatalogCounts:
    backlog: dict[tuple[str, str], int]  # (status, cause) -> artworks not processed
    processed: dict[str, int]  # content type -> processed artworks
    seconds: float  # how long the query took
    computed_at: float  # time.monotonic()
    deltas: int = 0  # delta rows summed: a fold compacts them


def count_catalog(engine: Engine) -> CatalogCounts:
    """The counts table's sums; labels are folded onto fixed sets so that odd rows add no series."""
    started = time.perf_counter()
    with engine.connect() as connection:
        read = status_counts.read(connection)
    rows = [(*group, n) for group, n in read.counts.items()]
    backlog: dict[tuple[str, str], int] = {}
    processed: dict[str, int] = dict.fromkeys(CONTENT_TYPES, 0)
    for content_type, status, cause, count in rows:
        if status == ArtworkStatus.PROCESSED:
            kind = content_type if content_type in processed else "other"
            processed[kind] = processed.get(kind, 0) + count
            continue
        label = (status if status in _STATUSES else "other", _cause(cause))
        backlog[label] = backlog.get(label, 0) + count
    for status in ArtworkStatus:
        if status != ArtworkStatus.PROCESSED and not any(key[0] == status for key in backlog):
            backlog[status.value, "none"] = 0
    seconds = time.perf_counter() - started
    return CatalogCounts(backlog, processed, seconds, time.monotonic(), read.rows)


def _cause(cause: str | None) -> str:
    if cause is None:
        return "none"
    return cause if cause in _CAUSES else "other"


class CatalogGauges(Collector):
    """A prometheus-client collector over `count_catalog`, cached for `ttl` seconds; folds the counts
    table's deltas in the background once more than `fold_above` were summed."""

    def __init__(
        self,
        engine: Engine,
        ttl: float,
        count: Callable[[Engine], CatalogCounts] = count_catalog,
        *,
        fold_above: int = status_counts.FOLD_ABOVE,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.fold_above = fold_above
        self._count = count
        self._lock = threading.Lock()
        self._counts: CatalogCounts | None = None
        self._tried_at = float("-inf")
        self._folding: threading.Thread | None = None

    def current(self) -> CatalogCounts | None:
        """The cached counts, recomputed first when older than `ttl` (one caller at a time)."""
        with self._lock:
            now = time.monotonic()
            if now - self._tried_at >= self.ttl:
                self._tried_at = now
                try:
                    self._counts = self._count(self.engine)
                except Exception as exc:  # a scrape must answer whatever the catalog does
                    log.warning("catalog gauges not refreshed: %s", exc)
                else:
                    if self._counts.deltas > self.fold_above:
                        self._start_fold()
            return self._counts

    def _start_fold(self) -> None:
        if self._folding is not None and self._folding.is_alive():
            return
        self._folding = threading.Thread(target=self._fold, name="catalog-counts-fold", daemon=True)
        self._folding.start()

    def _fold(self) -> None:
        try:
            removed = status_counts.fold(self.engine)
            log.debug("catalog counts folded: %d delta rows removed", removed)
        except Exception as exc:  # the next scrape past the threshold tries again
            log.warning("catalog counts not folded: %s", exc)

    def wait_for_fold(self, timeout: float | None = None) -> None:
        """Return once a fold started by a scrape has finished (a daemon thread: exit does not wait)."""
        if self._folding is not None:
            self._folding.join(timeout)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.current()
        if counts is None:
            return
        backlog = GaugeMetricFamily(
            f"{PREFIX}_catalog_backlog_artworks",
            "Artworks not processed, by status and failure cause (`none` when no cause is recorded).",
            labels=["status", "cause"],
        )
        for (status, cause), value in sorted(counts.backlog.items()):
            backlog.add_metric([status, cause], value)
        processed = GaugeMetricFamily(
            f"{PREFIX}_catalog_processed_artworks",
            "Artworks processed (every rendition stored), by content type.",
            labels=["content_type"],
        )
        for content_type, value in sorted(counts.processed.items()):
            processed.add_metric([content_type], value)
        yield backlog
        yield processed
        yield GaugeMetricFamily(
            f"{PREFIX}_catalog_gauges_age_seconds",
            "How long ago the catalog gauges were computed.",
            value=time.monotonic() - counts.computed_at,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_catalog_gauges_query_seconds",
            "How long the last computation of the catalog gauges took.",
            value=counts.seconds,
        )
