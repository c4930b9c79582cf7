"""Admin endpoints without a Dagster to talk to: authentication, validation, rate limiting, and a 503
naming the reason when Dagster cannot be reached (the launch path against a real webserver is in
test_serving_dagster.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN, UNREACHABLE_DAGSTER, ServedData

GOOD = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ENDPOINTS = [
    ("post", "/api/v1/admin/sync/images/series/101"),
    ("post", "/api/v1/admin/sync/images/missing?content_type=series&limit=10"),
    ("post", "/api/v1/admin/sync/images/cleanup"),
    # A fixed id (no task has it): test ids must be the same in every process that collects them (xdist).
    ("get", f"/api/v1/admin/tasks/{uuid.UUID(int=0x5E55)}"),
]


@contextmanager
def admin_api(data: ServedData, **settings: Any) -> Iterator[TestClient]:
    app = create_app(data.settings.model_copy(update=settings), catalog=data.catalog, store=data.store)
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_admin_auth_matrix(embedded_data: ServedData, method: str, path: str) -> None:
    with admin_api(embedded_data, admin_api_token=None) as client:
        disabled = client.request(method, path, headers=GOOD)
    assert disabled.status_code == 503 and disabled.json()["code"] == "admin_disabled"

    with admin_api(embedded_data, admin_sync_burst=100) as client:
        for headers in (
            {},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer "},
            {"Authorization": f"Bearer {ADMIN_TOKEN} extra"},
            {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            {"Authorization": ("Bearer " + "é" * 10).encode()},
        ):
            refused = client.request(method, path, headers=headers)
            assert refused.status_code == 401, (headers, refused.text)
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["code"] == "unauthorized"
        # The right token passes; Dagster is not running, so the answer is a 503 naming it.
        for scheme in ("Bearer", "bearer"):
            allowed = client.request(method, path, headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"})
            assert allowed.status_code == 503, allowed.text
            body = allowed.json()
            assert body["code"] == "dagster_unavailable"
            # Which dependency is down, not where it runs (the log has the address).
            assert "Dagster is not reachable" in body["message"]
            assert UNREACHABLE_DAGSTER not in allowed.text and "127.0.0.1" not in allowed.text
            assert allowed.headers["retry-after"]


def test_sync_of_an_unknown_item_is_404_before_dagster_is_asked(embedded_data: ServedData) -> None:
    with admin_api(embedded_data) as client:
        response = client.post("/api/v1/admin/sync/images/series/424242", headers=GOOD)
    assert response.status_code == 404
    assert response.json()["code"] == "content_not_found"


@pytest.mark.parametrize(
    ("method", "path", "parameter"),
    [
        ("post", "/api/v1/admin/sync/images/shows/1", "content_type"),
        ("post", "/api/v1/admin/sync/images/series/-3", "content_id"),
        ("post", "/api/v1/admin/sync/images/missing?limit=0", "limit"),
        ("post", "/api/v1/admin/sync/images/missing?limit=100001", "limit"),
        ("post", "/api/v1/admin/sync/images/missing?content_type=shows", "content_type"),
        ("post", "/api/v1/admin/sync/images/cleanup?dry_run=maybe", "dry_run"),
        ("post", "/api/v1/admin/sync/images/cleanup?grace_hours=-1", "grace_hours"),
        ("get", "/api/v1/admin/tasks/not-a-run-id", "task_id"),
    ],
)
def test_admin_parameters_are_validated(
    embedded_data: ServedData, method: str, path: str, parameter: str
) -> None:
    with admin_api(embedded_data) as client:
        response = client.request(method, path, headers=GOOD)
    assert response.status_code == 422, response.text
    assert response.json()["parameter"] == parameter


def test_task_ids_never_leave_their_path_segment(embedded_data: ServedData) -> None:
    with admin_api(embedded_data) as client:
        response = client.get("/api/v1/admin/tasks/..%2f..%2fgraphql", headers=GOOD)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_sync_launches_are_rate_limited_per_client(embedded_data: ServedData) -> None:
    with admin_api(embedded_data, admin_sync_burst=2, admin_sync_rate_per_minute=1) as client:
        statuses = [
            client.post("/api/v1/admin/sync/images/missing", headers=GOOD).status_code for _ in range(2)
        ]
        limited = client.post("/api/v1/admin/sync/images/cleanup", headers=GOOD)
        # Task status reads are not launches: never limited.
        reads = [
            client.get(f"/api/v1/admin/tasks/{uuid.uuid4()}", headers=GOOD).status_code for _ in range(3)
        ]
        # Refused requests do not spend the budget of the token holder.
        unauthenticated = client.post("/api/v1/admin/sync/images/missing")
    assert statuses == [503, 503]  # allowed through to Dagster, which is not running
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert reads == [503, 503, 503]
    assert unauthenticated.status_code == 401
