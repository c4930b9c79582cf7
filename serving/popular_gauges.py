"""The most viewed artwork as a gauge, for a dashboard's "most viewed" table: the top POPULAR_TOP
artworks of the last POPULAR_DAYS UTC days (the `/api/v1/images/stats/popular` query), recomputed at
most every CATALOG_METRICS_SECONDS per process.

Cardinality stays bounded: at most POPULAR_TOP series at a time, labelled by `rank` (1..N) and the
artwork they hold now; an artwork leaving the top N ends its series. A failed query keeps the last
figures and is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from serving.metrics import PREFIX
from tvdb_images.catalog.view_stats import PopularArtwork, popular_artwork

log = logging.getLogger(__name__)

POPULAR_TOP = 10
POPULAR_DAYS = 7


class PopularGauges(Collector):
    def __init__(self, engine: Engine, ttl: float) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._top: list[PopularArtwork] | None = None
        self._tried_at = float("-inf")

    def current(self) -> list[PopularArtwork] | None:
        with self._lock:
            now = time.monotonic()
            if now - self._tried_at >= self.ttl:
                self._tried_at = now
                until = datetime.now(UTC).date()
                try:
                    with Session(self.engine) as session:
                        self._top = popular_artwork(
                            session,
                            since=until - timedelta(days=POPULAR_DAYS - 1),
                            until=until,
                            limit=POPULAR_TOP,
                        )
                except Exception as exc:  # a scrape must answer whatever the catalog does
                    log.warning("popular artwork gauge not refreshed: %s", exc)
            return self._top

    def collect(self) -> Iterator[GaugeMetricFamily]:
        top = self.current()
        if top is None:
            return
        views = GaugeMetricFamily(
            f"{PREFIX}_popular_artwork_views",
            f"Views of the {POPULAR_TOP} most viewed artworks over the last {POPULAR_DAYS} UTC days.",
            labels=["rank", "artwork_id", "content_type", "content_id", "image_type"],
        )
        for rank, item in enumerate(top, start=1):
            labels = [
                str(rank),
                str(item.artwork_id),
                item.content_type,
                str(item.content_id),
                item.image_type,
            ]
            views.add_metric(labels, item.views)
        yield views
