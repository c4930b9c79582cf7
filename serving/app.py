"""FastAPI application factory: `create_app()` for uvicorn (`tvdb-images serve`), with settings from
the environment, or with settings, catalog, store and Dagster client passed in (tests, embedding)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serving.access_log import AccessLogMiddleware, configure_access_log
from serving.dagster_client import DagsterClient
from serving.docs import OPENAPI_PATH, install_docs
from serving.errors import install_error_handlers
from serving.fast_path import FastImagePath
from serving.http_policy import HttpPolicyMiddleware
from serving.metrics_middleware import MetricsMiddleware
from serving.routes import admin, artwork, health, images, manifest, metrics, popular, stats
from serving.routes.params import document_sizes
from serving.state import ServingState
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings, load_settings
from tvdb_images.storage import ObjectStore

DESCRIPTION = """\
Serves the local copies of TVDB artwork that the tvdb_images pipeline stores, their metadata and
storage statistics, and lets admins launch syncs (Dagster runs).

Every error answers with the same JSON shape (`ErrorBody`): `status`, `code`, `message`, and where
useful `parameter`, `details` and `request_id`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    catalog: Catalog | None = None,
    store: ObjectStore | None = None,
    dagster: DagsterClient | None = None,
    fast_path: bool = True,
) -> FastAPI:
    """`fast_path=False` leaves every image request to FastAPI's routing (tests compare the two)."""
    settings = settings or load_settings()
    state = ServingState.build(settings, catalog=catalog, store=store, dagster=dagster)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with state.views.running():  # view counts: flushed periodically and at shutdown
            yield
        state.close()

    app = FastAPI(
        title="tvdb-images",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI from local assets (serving.docs); no trailing-slash redirects, which would be
        # built from the request's Host header and give one resource two URLs.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH if settings.api_docs else None,
        redirect_slashes=False,
        openapi_tags=[
            {"name": "images", "description": "Image bytes of a content item's primary artwork."},
            {"name": "artwork", "description": "One artwork's metadata and images."},
            {"name": "stats", "description": "What is stored."},
            {
                "name": "admin",
                "description": "Launch syncs; needs `Authorization: Bearer <ADMIN_API_TOKEN>`.",
            },
            {"name": "health", "description": "Liveness and readiness probes."},
        ],
    )
    app.state.serving = state
    install_error_handlers(app)
    configure_access_log()
    _add_middleware(app, settings, state, fast_path=fast_path)
    # The manifest routes first: the image routes' `{size}` segment would take `manifest` too.
    routers = (manifest.router, images.router, artwork.router, stats.router, admin.router, health.router)
    for router in routers:
        app.include_router(router)
    if state.metrics is not None:
        app.include_router(metrics.router)
    app.include_router(popular.router)
    document_sizes(app, settings.crop_names)
    if settings.api_docs:
        install_docs(app)
    return app


def _add_middleware(app: FastAPI, settings: Settings, state: ServingState, *, fast_path: bool) -> None:
    """Outermost last: proxy headers first name the client, then the access log, metrics, policy, CORS;
    innermost the image fast path (serving.fast_path), so all of them apply to its answers too."""
    if fast_path:
        app.add_middleware(FastImagePath)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Authorization", "Idempotency-Key", "If-None-Match", "If-Modified-Since"],
            expose_headers=["ETag", "Last-Modified", "Content-Location", "X-Artwork-Id", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(HttpPolicyMiddleware)
    if state.metrics is not None:
        app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(AccessLogMiddleware)
    if settings.trusted_proxies:
        # uvicorn's own handling is off (serving.server): only these peers may name the client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
