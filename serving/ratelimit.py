"""An in-process token bucket per client: the admin sync endpoints launch real work, so a script in a
loop must not queue hundreds of Dagster runs.

Each API process keeps its own buckets, with its share of the budget: `tvdb-images serve --workers N`
gives each worker 1/N of ADMIN_SYNC_RATE_PER_MINUTE and of ADMIN_SYNC_BURST (at least 1), so the
deployment as a whole never allows more than the configured budget, whichever worker the kernel hands
a connection to. (A client may be refused a little before the full budget when its requests land on
one worker; for the admin API, whose requests launch Dagster runs, erring that way is the point. A
shared counter in PostgreSQL would be exact but puts a write on the catalog for every admin request
and does not exist for the embedded SQLite setup. Idempotent launches, serving.launches, keep a
retried request from starting work twice whatever the limiter says.)"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`burst` requests at once, refilled at `rate_per_second`; idle full buckets are forgotten."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def share_of(cls, rate_per_second: float, burst: int, workers: int) -> TokenBucketLimiter:
        """One worker's share of a deployment-wide budget."""
        workers = max(1, workers)
        return cls(rate_per_second / workers, max(1, burst // workers))

    def acquire(self, client: str) -> float:
        """Take one token: 0.0 if allowed, else the seconds until the next token."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self._max_clients:
                    self._forget_full(now)
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def worker_count() -> int:
    """The number of API worker processes, which `tvdb-images serve` exports as WEB_CONCURRENCY."""
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))
    except ValueError:
        return 1
