"""One error shape for every failure: raised `ApiError`s, FastAPI's validation errors, unknown routes
and unexpected exceptions all answer with an `ErrorBody` JSON document."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from serving.schemas import ErrorBody
from tvdb_images.storage import StorageError

log = logging.getLogger(__name__)

# Errors are about this request only: never let a cache keep them.
NO_STORE = {"Cache-Control": "no-store"}
_RETRY_SOON = {"Retry-After": "5"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    422: "invalid_parameter",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a route to answer with an `ErrorBody`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        parameter: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(request: Request, error: ApiError) -> JSONResponse:
    request.scope.setdefault("state", {})["error_code"] = error.code  # for serving.metrics_middleware
    body = ErrorBody(
        status=error.status,
        code=error.code,
        message=error.message,
        parameter=error.parameter,
        details=error.details,
        request_id=request_id(request),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=error.status,
        headers={**NO_STORE, **error.headers},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]  # Starlette types handlers for Exception
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]  # Starlette types handlers for Exception
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]  # Starlette types handlers for Exception
    app.add_exception_handler(OperationalError, _catalog_unavailable)  # type: ignore[arg-type]  # Starlette types handlers for Exception
    app.add_exception_handler(StorageError, _storage_unavailable)  # type: ignore[arg-type]  # Starlette types handlers for Exception
    app.add_exception_handler(Exception, _unexpected_error)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        where, name = (location[0], ".".join(location[1:])) if len(location) > 1 else ("request", "")
        problems.append({"in": where, "name": name, "message": error.get("msg", "invalid")})
    first = problems[0] if problems else {"in": "request", "name": "", "message": "invalid request"}
    label = f"{first['in']} parameter {first['name']!r}" if first["name"] else "request"
    return error_response(
        request,
        ApiError(
            422,
            "invalid_parameter",
            f"invalid {label}: {first['message']}",
            parameter=first["name"] or None,
            details={"errors": problems},
        ),
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _REASONS.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /docs for the API's paths"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(request, ApiError(exc.status_code, code, message, headers=headers))


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette names only the first matching route's,
    and GET and HEAD of an image are two routes. Asked of each route through `matches`, the one
    interface every kind of route (and FastAPI's included routers) has."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _catalog_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    log.error("catalog database unavailable: %s", exc.orig)
    return error_response(
        request,
        ApiError(503, "catalog_unavailable", "the catalog database is not reachable", headers=_RETRY_SOON),
    )


async def _storage_unavailable(request: Request, exc: StorageError) -> JSONResponse:
    log.error("object storage unavailable: %s", exc)
    return error_response(request, storage_unavailable())


def storage_unavailable() -> ApiError:
    """The client learns which dependency is down, never its address or the key: the log keeps those."""
    return ApiError(503, "storage_unavailable", "object storage is not reachable", headers=_RETRY_SOON)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, ApiError(500, "internal_error", "internal server error"))


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the error shape for these status codes."""
    descriptions = {
        401: "Missing, malformed or wrong admin token (`WWW-Authenticate: Bearer`).",
        404: "Not found; the body says what.",
        409: "Conflicts with work already in progress.",
        422: "A path or query parameter is invalid; `parameter` names it.",
        429: "Too many requests; retry after `Retry-After` seconds.",
        500: "The catalog holds something the API refuses to serve.",
        502: "Dagster answered with an error.",
        503: "A dependency is unavailable (admin API disabled, Dagster or storage unreachable).",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions.get(status, _REASONS.get(status, ""))}
        for status in statuses
    }
