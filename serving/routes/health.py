"""Probes: `/healthz` says the process answers; `/readyz` says the catalog and storage are reachable.

Each readiness check runs in a small thread pool with a deadline, so a hung database or S3 endpoint
makes the probe answer 503 in time instead of hanging the orchestrator's probe. The answer names the
dependency and the kind of failure only; its address and the driver's message go to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from serving.dependencies import State
from serving.schemas import CheckResult, Health, Readiness
from serving.state import ServingState

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 5.0


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process is up and serving requests. Touches nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency failed; `checks` says which."}},
)
def readyz(state: State) -> JSONResponse:
    """Readiness: the catalog answers `SELECT 1` and object storage's buckets are reachable."""
    checks = {
        "database": _run_check(state, "database", lambda: _database(state)),
        "storage": _run_check(state, "storage", state.store.check),
    }
    ready = all(check.ok for check in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


def _database(state: ServingState) -> None:
    with state.catalog.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _run_check(state: ServingState, name: str, check: Callable[[], None]) -> CheckResult:
    started = time.perf_counter()
    future = state.probes.submit(check)
    try:
        future.result(timeout=CHECK_TIMEOUT_SECONDS)
    except FutureTimeout:
        log.error("readiness: %s gave no answer within %.0f s", name, CHECK_TIMEOUT_SECONDS)
        return CheckResult(
            ok=False, elapsed_ms=_ms(started), error=f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"
        )
    except Exception as exc:  # any failure of the dependency makes the process not ready
        log.error("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
        return CheckResult(ok=False, elapsed_ms=_ms(started), error=f"{name} is not reachable")
    return CheckResult(ok=True, elapsed_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
