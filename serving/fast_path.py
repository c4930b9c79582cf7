"""The two image routes without FastAPI's routing and validation: an ASGI layer, innermost of the app's
middleware, that answers a GET or HEAD of an image whose path and query are valid by calling the very
functions the routes call (`serving.routes.images.item_image`, `serving.routes.artwork.artwork_image`).

Why: an image answer from memory (a 304, a CDN redirect, cached bytes) costs ~100 µs of work of its
own, and FastAPI's route matching over every route, parameter validation and dependency solving cost
about as much again. Everything around the answer stays as it was: the access log, metrics, the HTTP
policy and CORS are outer layers; errors go through the app's own exception handlers; the matched
route is put into the scope as Starlette would (the metrics label it by its template).

What is answered here is only what FastAPI would accept: canonical ids within BIGINT, known content and
image types, one of the five sizes or a configured crop, and at most one valid `v` (and `format` on
artwork URLs) in the query. Anything else (a malformed id, an unknown size, a repeated or unknown query
parameter, a root path) goes on to FastAPI, so its 422s, 404s and OpenAPI are exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.conditional import VERSION_PATTERN
from serving.routes import artwork, images
from serving.routes.artwork import artwork_image
from serving.routes.images import item_image
from serving.routes.params import MAX_ID
from serving.state import ServingState
from tvdb_images.config import CONTENT_TYPES, IMAGE_TYPES
from tvdb_images.registry import FORMATS, SIZE_NAMES

PREFIX = "/api/v1/images/"
ITEM_TEMPLATE = "/api/v1/images/{content_type}/{content_id}/{image_type}/{size}"
ARTWORK_TEMPLATE = "/api/v1/images/artwork/{artwork_id}/{size}"
_ID = re.compile(r"0|[1-9][0-9]{0,18}")
_VERSION = re.compile(VERSION_PATTERN.removeprefix("^").removesuffix("$"))
_CONTENT_TYPES = frozenset(CONTENT_TYPES)
_IMAGE_TYPES = frozenset(IMAGE_TYPES)
_FORMATS = frozenset(f.name for f in FORMATS)
_METHODS = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class _Routes:
    """The app's own routes for the two templates (per method), and its exception handlers."""

    routes: dict[tuple[str, str], BaseRoute]
    handlers: tuple[dict[Any, Any], dict[int, Any]]
    sizes: frozenset[str]


class FastImagePath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: _Routes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        known = self._routes or self._learn(scope["app"])
        call = _parse(path, scope["query_string"], known.sizes)
        route = known.routes.get((call[0], scope["method"])) if call is not None else None
        if call is None or route is None:
            await self.app(scope, receive, send)
            return
        template, params, query = call
        scope["route"] = route
        scope["endpoint"] = getattr(route, "endpoint", None)
        scope["path_params"] = params
        scope["starlette.exception_handlers"] = known.handlers
        request = Request(scope, receive)
        state: ServingState = scope["app"].state.serving

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response: Response
            if template == ITEM_TEMPLATE:
                response = await item_image(
                    request,
                    state,
                    params["content_type"],
                    int(params["content_id"]),
                    params["image_type"],
                    params["size"],
                    query.get("v"),
                )
            else:
                response = await artwork_image(
                    request,
                    state,
                    int(params["artwork_id"]),
                    params["size"],
                    query.get("format"),
                    query.get("v"),
                )
            await response(scope, receive, send)

        # As Starlette runs a route: its exception handlers answer what the function raises.
        await wrap_app_handling_exceptions(answer, request)(scope, receive, send)

    def _learn(self, app: Any) -> _Routes:
        # The routes FastAPI puts into the scope when it matches one (the routers' own APIRoutes).
        routes: dict[tuple[str, str], BaseRoute] = {}
        for route in (*images.router.routes, *artwork.router.routes):
            template = getattr(route, "path", None)
            if template in (ITEM_TEMPLATE, ARTWORK_TEMPLATE):
                for method in getattr(route, "methods", None) or ():
                    routes.setdefault((template, method), route)
        # What Starlette's ExceptionMiddleware holds: every handler but the 500 one (the outermost
        # ServerErrorMiddleware's), exception types apart from status codes.
        handlers = {
            key: handler
            for key, handler in app.exception_handlers.items()
            if key not in (500, Exception) and not isinstance(key, int)
        }
        statuses = {
            key: handler
            for key, handler in app.exception_handlers.items()
            if isinstance(key, int) and key != 500
        }
        sizes = frozenset(SIZE_NAMES) | frozenset(app.state.serving.settings.crop_names)
        self._routes = _Routes(routes, (handlers, statuses), sizes - {"manifest"})
        return self._routes


def _parse(
    path: str, query_string: bytes, sizes: frozenset[str]
) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """(template, path parameters, query) of a request FastAPI would accept on an image route, or None."""
    parts = path[len(PREFIX) :].split("/")
    params: dict[str, str]
    allowed: tuple[str, ...]
    if len(parts) == 3 and parts[0] == "artwork":
        _, artwork_id, size = parts
        if not _valid_id(artwork_id) or size not in sizes:
            return None
        template, allowed = ARTWORK_TEMPLATE, ("v", "format")
        params = {"artwork_id": artwork_id, "size": size}
    elif len(parts) == 4:
        content_type, content_id, image_type, size = parts
        if (
            content_type not in _CONTENT_TYPES
            or image_type not in _IMAGE_TYPES
            or not _valid_id(content_id)
            or size not in sizes
        ):
            return None
        template, allowed = ITEM_TEMPLATE, ("v",)
        params = {
            "content_type": content_type,
            "content_id": content_id,
            "image_type": image_type,
            "size": size,
        }
    else:
        return None
    query: dict[str, str] = {}
    if query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name not in allowed or name in query:
                return None
            if name == "v" and not _VERSION.fullmatch(value):
                return None
            if name == "format" and value not in _FORMATS:
                return None
            query[name] = value
    return template, params, query


def _valid_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None and int(text) <= MAX_ID
