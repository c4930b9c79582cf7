"""FastAPI dependencies: the shared state, a catalog session, admin authentication, rate limiting.

Admin calls need `Authorization: Bearer <ADMIN_API_TOKEN>`. With no token configured the admin API
is switched off (503), never open; a missing, malformed or wrong token is a 401 with
`WWW-Authenticate: Bearer`. Tokens are compared with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from serving.errors import ApiError
from serving.state import ServingState

_REALM = 'Bearer realm="tvdb-images"'
# Declares the bearer scheme in the OpenAPI schema (so /docs has an Authorize button); the checking
# itself is `check_admin`'s, which answers with this API's error shape.
BEARER_SCHEME = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="`Authorization: Bearer <ADMIN_API_TOKEN>`"
)


def state_of(request: Request) -> ServingState:
    """The shared state, read directly by the image endpoints: resolving it as a dependency costs
    ~10 µs of FastAPI's dependency solving per request, a tenth of a cached image response."""
    return request.app.state.serving


async def get_state(request: Request) -> ServingState:
    # async: FastAPI would run a plain function in the thread pool, a hop per request.
    return state_of(request)


State = Annotated[ServingState, Depends(get_state)]


def catalog_session(state: State) -> Iterator[Session]:
    with state.catalog.session() as session:
        yield session


# Closed when the route function returns, before a streamed image body is sent: no database
# connection is held while a client downloads.
CatalogSession = Annotated[Session, Depends(catalog_session, scope="function")]


def check_admin(
    request: Request,
    state: State,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)] = None,
) -> str:
    """Authenticate an admin request; returns a short fingerprint of the token for rate limiting.

    The `Admin` dependency of the admin routes, and called directly where a route needs an admin only
    for some of its parameters. `_declared` only puts the bearer scheme into the OpenAPI schema."""
    configured = state.settings.admin_api_token
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected:
        raise ApiError(503, "admin_disabled", "admin API disabled: ADMIN_API_TOKEN is not configured")
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "unauthorized",
            "admin token required: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": _REALM},
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(
            401,
            "unauthorized",
            "malformed Authorization header: expected 'Bearer <token>'",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_request"'},
        )
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "invalid admin token",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
        )
    return hashlib.sha256(token.encode()).hexdigest()[:12]


Admin = Annotated[str, Depends(check_admin)]


def limit_sync_launches(request: Request, state: ServingState, admin: str) -> None:
    """One token bucket per admin token and client address. Called by the routes once their
    parameters are valid (an invalid request answers 422 and spends nothing). The address is the TCP
    peer's, or the one X-Forwarded-For names when the peer is in TRUSTED_PROXIES (serving.app)."""
    client = request.client.host if request.client else "unknown"
    wait = state.sync_limiter.acquire(f"{admin}:{client}")
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"too many sync requests; retry in {retry_after} s",
            details={
                "limit_per_minute": state.settings.admin_sync_rate_per_minute,
                "burst": state.settings.admin_sync_burst,
            },
            headers={"Retry-After": str(retry_after)},
        )
