"""The serving API's Prometheus metrics, summed over every worker of `tvdb-images serve --workers N`.

`tvdb-images serve` gives each deployment its own PROMETHEUS_MULTIPROC_DIR (serving.metrics_dir), so
every worker writes its counts to memory-mapped files there and a scrape, whichever worker answers
it, reads them all (prometheus-client's multiprocess mode). Without that directory (the app built in
a test, or run by another ASGI server) the counts live in this process's own registry.

Labels are bounded: a route is the template it matched (`/api/v1/images/{content_type}/...`), never
the raw path, and anything else is one of a fixed set of values. Docs: docs/operations.md, Metrics.
"""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from serving.events import Recorder
from serving.metrics_dir import MULTIPROC_ENV
from serving.tally import Incrementable, Tally

PREFIX = "tvdb_images"
# Image answers take 1-20 ms from memory and tens of ms streamed from storage; admin launches seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Error codes (serving.errors) that say a storage read failed, and the cause label each one counts as.
STORAGE_ERROR_CODES = {"storage_unavailable": "unavailable", "object_missing": "missing"}


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _match_value_class(multiprocess: bool) -> None:
    """prometheus-client picks its value class when it is imported; if that was before the directory
    was named (or after it was dropped), pick again, once, before the first metric is made."""
    if multiprocess and values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()
    elif not multiprocess and values.ValueClass is not values.MutexValue:
        values.ValueClass = values.MutexValue


class ServingMetrics(Recorder):
    """One API process's metrics. In multiprocess mode the values are the shared files, so several
    instances in one process (tests) add to the same series; otherwise each has its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir() is not None
        _match_value_class(self.multiprocess)
        registry = self.registry
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from the request to the last byte of its answer, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bytes_sent = Counter(
            f"{PREFIX}_http_response_bytes",
            "Response body bytes sent, by route template.",
            ["route"],
            registry=registry,
        )
        self.not_modified = Counter(
            f"{PREFIX}_http_not_modified",
            "304 Not Modified answers, by route template.",
            ["route"],
            registry=registry,
        )
        self.redirects = Counter(
            f"{PREFIX}_http_redirects",
            "Redirect answers (307 to the CDN, 302 to a missing image's source), by route and status.",
            ["route", "status"],
            registry=registry,
        )
        self.cache = Counter(
            f"{PREFIX}_cache_requests",
            "Lookups in the per-process caches: `lookup` (catalog answers), `bytes` (rendition bytes).",
            ["cache", "result"],
            registry=registry,
        )
        self.cache_bytes = Gauge(
            f"{PREFIX}_byte_cache_bytes",
            "Rendition bytes held in memory, summed over the live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.storage_errors = Counter(
            f"{PREFIX}_storage_read_errors",
            "Image answers that failed reading storage: `unavailable` (503) or `missing` (object lost, 404).",
            ["cause"],
            registry=registry,
        )
        self.launches = Counter(
            f"{PREFIX}_admin_launches",
            "Admin sync requests answered 202: `launched` a new run or `replayed` an existing one.",
            ["route", "outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_admin_rate_limited",
            "Admin sync requests refused with 429 by the rate limiter.",
            ["route"],
            registry=registry,
        )
        self._hits = {
            (cache, hit): self.cache.labels(cache, "hit" if hit else "miss")
            for cache in ("lookup", "bytes")
            for hit in (True, False)
        }
        self._extra: list[Collector] = []
        self.tally = Tally()

    def count(self, value: Incrementable, amount: float = 1.0) -> None:
        """Add to a counter (a labelled child) through the batch; see serving.tally."""
        self.tally.add(value, amount)

    def latency_series(self, route: str) -> LatencySeries:
        return LatencySeries(self.latency.labels(route))

    def flush(self) -> None:
        self.tally.flush()

    # Recorder
    def lookup(self, hit: bool) -> None:
        self.tally.add(self._hits["lookup", hit])

    def byte_cache(self, hit: bool) -> None:
        self.tally.add(self._hits["bytes", hit])

    def byte_cache_size(self, used_bytes: int) -> None:
        self.cache_bytes.set(used_bytes)

    def add_collector(self, collector: Collector) -> None:
        """Metrics computed at scrape time (the catalog gauges), not kept in the shared files."""
        self._extra.append(collector)

    def exposition(self) -> bytes:
        """The text format of every worker's metrics (or this process's), plus the scrape-time ones;
        `flush` this worker's batch first, on its event loop."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        output = generate_latest(registry)
        if self._extra:
            extra = CollectorRegistry(auto_describe=False)
            for collector in self._extra:
                extra.register(collector)
            output += generate_latest(extra)
        return output


class LatencySeries:
    """One route's latency histogram, observed through the batch: `Histogram.observe` adds to the sum
    and to the first bucket whose bound holds the value, and so does this (its values are
    prometheus-client's own, kept cumulative by the exposition)."""

    def __init__(self, child: Histogram) -> None:
        self._sum: Incrementable = child._sum
        self._buckets: list[Incrementable] = list(child._buckets)
        self._bounds: list[float] = list(child._upper_bounds)

    def observe(self, tally: Tally, seconds: float) -> None:
        tally.add(self._sum, seconds)
        tally.add(self._buckets[bisect_left(self._bounds, seconds)])
