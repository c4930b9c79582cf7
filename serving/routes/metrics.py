"""`GET /metrics`: the Prometheus text format (serving.metrics), off the OpenAPI schema.

With METRICS_TOKEN set, a scrape needs `Authorization: Bearer <METRICS_TOKEN>` (Prometheus:
`authorization: {credentials: ...}` in the scrape config); the token is compared in constant time.
Reading every worker's files, and now and then the catalog gauges' query, runs in the thread pool,
off the event loop.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from serving.errors import ApiError
from serving.state import ServingState

METRICS_PATH = "/metrics"
router = APIRouter()


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    token = state.settings.metrics_token.get_secret_value() if state.settings.metrics_token else ""
    if token and not _authorized(request.headers.get("authorization"), token):
        raise ApiError(
            401,
            "unauthorized",
            "metrics token required: Authorization: Bearer <METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="tvdb-images metrics"'},
        )
    assert state.metrics is not None  # the route is installed only with METRICS_ENABLED
    state.metrics.flush()  # this worker's batch, on the loop that counts it (serving.tally)
    return Response(await run_in_threadpool(state.metrics.exposition), media_type=CONTENT_TYPE_LATEST)


def _authorized(header: str | None, expected: str) -> bool:
    scheme, _, supplied = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), expected.encode())
