"""Counts every HTTP answer into `ServingMetrics`: a pure ASGI middleware (like the access log), so
streamed image bodies pass through untouched and the byte count is what went out.

The route label is the template of the route that matched (Starlette leaves it in the scope), or
`unmatched`: never the raw path, so a scanner walking random URLs adds no series.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import METHODS, STORAGE_ERROR_CODES, LatencySeries, ServingMetrics

UNMATCHED = "unmatched"
ERROR_CODE_KEY = "error_code"  # set in the request's state by serving.errors.error_response


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series of each (method, route, status) seen: a dict lookup instead of
        # `labels()`, which validates and locks, on every request. Bounded as the labels are.
        self._series: dict[tuple[str, str, int], tuple[Counter, LatencySeries, Counter]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome: dict[str, Any] = {"status": 500, "bytes": 0, "replayed": False}

        async def send_and_count(message: Message) -> None:
            if message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                if outcome["status"] == 202:
                    outcome["replayed"] = (b"idempotent-replayed", b"true") in message.get("headers", ())
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            self._count(scope, outcome, time.perf_counter() - started)

    def _count(self, scope: Scope, outcome: dict[str, Any], seconds: float) -> None:
        metrics = self.metrics
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        status = outcome["status"]
        method = scope.get("method", "")
        method = method if method in METHODS else "other"
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                metrics.requests.labels(method, route, str(status)),
                metrics.latency_series(route),
                metrics.bytes_sent.labels(route),
            )
        tally = metrics.tally
        tally.add(series[0])
        series[1].observe(tally, seconds)
        if outcome["bytes"]:
            tally.add(series[2], outcome["bytes"])
        if status == 304:
            tally.add(metrics.not_modified.labels(route))
        elif 300 <= status < 400:
            tally.add(metrics.redirects.labels(route, str(status)))
        elif status == 202 and route.startswith("/api/v1/admin/"):
            tally.add(metrics.launches.labels(route, "replayed" if outcome["replayed"] else "launched"))
        elif status >= 400:
            code = (scope.get("state") or {}).get(ERROR_CODE_KEY)
            if code in STORAGE_ERROR_CODES:
                tally.add(metrics.storage_errors.labels(STORAGE_ERROR_CODES[code]))
            elif code == "rate_limited":
                tally.add(metrics.rate_limited.labels(route))
