"""GET /metrics in-process (the embedded setup: SQLite and local files): what the middleware, the
caches and the catalog gauges count, bounded labels, the token, and METRICS_ENABLED=false."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.app import create_app
from serving.catalog_gauges import CatalogGauges, count_catalog
from serving.metrics_dir import MULTIPROC_ENV, metrics_directory
from tvdb_images.catalog.models import Artwork
from tvdb_images.config import Settings
from tvdb_images.storage import store_from_settings
from tvdb_images_tests.support.metrics_support import IMAGE_ROUTE, label_values, value
from tvdb_images_tests.support.processes import free_port
from tvdb_images_tests.support.serving_data import ServedData

IMAGE = "/api/v1/images/series/101/poster/medium"


def _client(data: ServedData, **overrides: object) -> TestClient:
    settings = Settings.model_validate({**data.env, **{k.upper(): v for k, v in overrides.items()}})
    return TestClient(create_app(settings, catalog=data.catalog, store=data.store))


@pytest.fixture
def client(embedded_data: ServedData) -> Iterator[TestClient]:
    with _client(embedded_data) as test_client:
        yield test_client


def test_requests_are_counted_by_route_template_status_and_bytes(client: TestClient) -> None:
    first = client.get(IMAGE)
    assert first.status_code == 200
    second = client.get(IMAGE)
    assert client.get(IMAGE, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    assert client.get("/api/v1/images/series/987654/poster/medium").status_code == 404
    assert client.get("/no/such/path/31337").status_code == 404
    text = client.get("/metrics").text

    image = {"route": IMAGE_ROUTE}
    assert value(text, "tvdb_images_http_requests_total", {**image, "status": "200", "method": "GET"}) == 2
    assert value(text, "tvdb_images_http_requests_total", {**image, "status": "404"}) == 1
    assert value(text, "tvdb_images_http_requests_total", {"route": "unmatched", "status": "404"}) == 1
    assert value(text, "tvdb_images_http_not_modified_total", image) == 1
    assert value(text, "tvdb_images_http_request_duration_seconds_count", image) == 4
    assert value(text, "tvdb_images_http_request_duration_seconds_sum", image) > 0
    sent = value(text, "tvdb_images_http_response_bytes_total", image)
    assert sent >= len(first.content) + len(second.content)
    # The first GET missed both caches; the second found the catalog answer and the bytes in memory.
    assert value(text, "tvdb_images_cache_requests_total", {"cache": "lookup", "result": "miss"}) >= 1
    assert value(text, "tvdb_images_cache_requests_total", {"cache": "lookup", "result": "hit"}) >= 2
    assert value(text, "tvdb_images_cache_requests_total", {"cache": "bytes", "result": "miss"}) == 1
    assert value(text, "tvdb_images_cache_requests_total", {"cache": "bytes", "result": "hit"}) >= 1
    assert value(text, "tvdb_images_byte_cache_bytes") == len(first.content)
    # Raw paths never become label values.
    routes = label_values(text, "route")
    assert not any("987654" in route or "31337" in route for route in routes), routes


def test_redirects_and_odd_methods_are_counted(embedded_data: ServedData) -> None:
    with _client(embedded_data, cdn_base_url="https://cdn.example.com/img") as cdn:
        assert cdn.get(IMAGE, follow_redirects=False).status_code == 307
        assert cdn.request("BREW", IMAGE).status_code == 405
        text = cdn.get("/metrics").text
    assert value(text, "tvdb_images_http_redirects_total", {"route": IMAGE_ROUTE, "status": "307"}) == 1
    assert value(text, "tvdb_images_http_requests_total", {"method": "other"}) == 1
    assert "BREW" not in label_values(text, "method")


def test_storage_read_errors_are_counted(embedded_data: ServedData, tmp_path: Path) -> None:
    """A storage that has lost every object (an empty directory): each image answer is `missing`."""
    settings = Settings.model_validate({**embedded_data.env, "LOCAL_STORAGE_DIR": str(tmp_path)})
    app = create_app(settings, catalog=embedded_data.catalog, store=store_from_settings(settings))
    with TestClient(app) as lost:
        answers = [lost.get(IMAGE) for _ in range(3)]
        text = lost.get("/metrics").text
    assert [a.json()["code"] for a in answers] == ["object_missing"] * 3
    assert value(text, "tvdb_images_storage_read_errors_total", {"cause": "missing"}) == 3
    assert value(text, "tvdb_images_storage_read_errors_total", {"cause": "unavailable"}) == 0


def test_catalog_gauges_match_the_catalog(client: TestClient, embedded_data: ServedData) -> None:
    text = client.get("/metrics").text
    with embedded_data.catalog.session() as session:
        by_status = dict(session.execute(select(Artwork.status, func.count()).group_by(Artwork.status)).all())
        processed = dict(
            session.execute(
                select(Artwork.content_type, func.count())
                .where(Artwork.status == "processed")
                .group_by(Artwork.content_type)
            ).all()
        )
    assert by_status.get("pending", 0) > 0 and processed  # the fixture has both
    for status in ("pending", "failed", "gone", "downloaded"):
        exported = value(text, "tvdb_images_catalog_backlog_artworks", {"status": status})
        assert exported == by_status.get(status, 0), status
    for content_type, count in processed.items():
        assert value(text, "tvdb_images_catalog_processed_artworks", {"content_type": content_type}) == count
    assert value(text, "tvdb_images_catalog_gauges_query_seconds") > 0


def test_catalog_gauges_query_at_most_once_per_interval(embedded_data: ServedData) -> None:
    calls = []

    def counting(engine):
        calls.append(1)
        return count_catalog(engine)

    gauges = CatalogGauges(embedded_data.catalog.engine, ttl=3600, count=counting)
    for _ in range(5):
        assert list(gauges.collect())
    assert len(calls) == 1
    gauges.ttl = 0
    list(gauges.collect())
    assert len(calls) == 2


def test_metrics_are_off_the_schema_and_can_need_a_token(embedded_data: ServedData) -> None:
    with _client(embedded_data, metrics_token="scrape-secret") as protected:
        assert "/metrics" not in protected.get("/openapi.json").json()["paths"]
        refused = protected.get("/metrics")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        assert protected.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = protected.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert allowed.status_code == 200
        assert allowed.headers["content-type"].startswith("text/plain")
        assert "tvdb_images_http_requests_total" in allowed.text


def test_metrics_disabled(embedded_data: ServedData) -> None:
    with _client(embedded_data, metrics_enabled="false") as off:
        assert off.get(IMAGE).status_code == 200
        assert off.get("/metrics").status_code == 404
        assert off.app.state.serving.metrics is None


def test_rate_limited_admin_calls_are_counted(embedded_data: ServedData) -> None:
    """One token a minute: the second sync request is refused before it reaches Dagster (which is
    not running here, so the first answers 503 and launches nothing)."""
    dagster = f"http://127.0.0.1:{free_port()}/graphql"
    with _client(
        embedded_data,
        admin_api_token="admin-secret",
        admin_sync_burst=1,
        admin_sync_rate_per_minute=1,
        dagster_graphql_url=dagster,
    ) as admin:
        auth = {"Authorization": "Bearer admin-secret"}
        statuses = [
            admin.post("/api/v1/admin/sync/images/missing", headers=auth).status_code for _ in range(2)
        ]
        text = admin.get("/metrics").text
    assert statuses == [503, 429]
    route = "/api/v1/admin/sync/images/missing"
    assert value(text, "tvdb_images_admin_rate_limited_total", {"route": route}) == 1
    assert value(text, "tvdb_images_admin_launches_total") == 0


def test_serve_metrics_directory_is_made_emptied_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with metrics_directory(True) as made:
        assert made is not None and made.is_dir() and os.environ[MULTIPROC_ENV] == str(made)
    assert not made.exists() and MULTIPROC_ENV not in os.environ

    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"an earlier run's")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with metrics_directory(True) as used:
        assert used == given and not list(given.glob("*.db"))
    assert given.is_dir()  # the operator's directory stays
    with metrics_directory(False) as off:
        assert off is None and MULTIPROC_ENV not in os.environ
