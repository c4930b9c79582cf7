"""Views counted by the API app (in process, its lifespan running the flusher) and the popular
endpoint, on the embedded setup and on PostgreSQL + SeaweedFS S3."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tvdb_images.catalog.models import ArtworkViewCount
from tvdb_images_tests.support.serving_data import PRIMARY_POSTER, ServedData, api
from tvdb_images_tests.support.waiting import wait_until

POPULAR = "/api/v1/images/stats/popular"
IMAGE = "/api/v1/images/series/101/poster"


def _stored(data: ServedData, artwork_id: int) -> dict[str, int]:
    today = datetime.now(UTC).date()
    with data.catalog.session() as session:
        rows = session.execute(
            select(ArtworkViewCount.size, func.sum(ArtworkViewCount.count))
            .where(ArtworkViewCount.artwork_id == artwork_id, ArtworkViewCount.day == today)
            .group_by(ArtworkViewCount.size)
        )
        return {size: int(count) for size, count in rows}


def _popular_views(client: TestClient, artwork_id: int, **params: Any) -> int:
    answer = client.get(POPULAR, params={"days": 1, "limit": 100, **params})
    assert answer.status_code == 200, answer.text
    return next((item["views"] for item in answer.json()["items"] if item["artwork_id"] == artwork_id), 0)


def test_successful_image_gets_are_counted_and_flushed_at_shutdown(served: ServedData) -> None:
    before = _stored(served, PRIMARY_POSTER)
    with api(served, view_flush_seconds=3600) as client:  # only the shutdown flush writes
        popular_before = _popular_views(client, PRIMARY_POSTER)
        etag = client.get(f"{IMAGE}/medium").headers["etag"]
        assert client.get(f"{IMAGE}/medium", headers={"If-None-Match": etag}).status_code == 304
        assert client.get(f"{IMAGE}/small").status_code == 200
        assert client.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}/small").status_code == 200
        assert client.head(f"{IMAGE}/small").status_code == 200  # HEAD: not a view
        assert client.get("/api/v1/images/series/999/poster/small").status_code == 404  # not a view
        assert client.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}").status_code == 200  # metadata
        assert _stored(served, PRIMARY_POSTER) == before  # nothing written per request
    after = _stored(served, PRIMARY_POSTER)
    assert after.get("medium", 0) - before.get("medium", 0) == 2
    assert after.get("small", 0) - before.get("small", 0) == 2
    with api(served) as client:
        assert _popular_views(client, PRIMARY_POSTER) - popular_before == 4
        assert _popular_views(client, PRIMARY_POSTER, content_type="series", image_type="poster") > 0
        assert _popular_views(client, PRIMARY_POSTER, content_type="people") == 0


def test_cdn_redirects_count_and_analytics_can_be_switched_off(served: ServedData) -> None:
    before = _stored(served, PRIMARY_POSTER).get("large", 0)
    with api(served, cdn_base_url="https://cdn.example.test") as client:
        assert client.get(f"{IMAGE}/large", follow_redirects=False).status_code == 307
    assert _stored(served, PRIMARY_POSTER).get("large", 0) == before + 1
    with api(served, view_analytics=False) as client:
        assert client.get(f"{IMAGE}/large").status_code == 200
    assert _stored(served, PRIMARY_POSTER).get("large", 0) == before + 1


def test_the_flusher_writes_while_serving(served: ServedData) -> None:
    before = _stored(served, PRIMARY_POSTER).get("thumbnail", 0)
    with api(served, view_flush_seconds=0.2) as client:
        for _ in range(3):
            assert client.get(f"{IMAGE}/thumbnail").status_code == 200

        def flushed() -> bool:
            if _stored(served, PRIMARY_POSTER).get("thumbnail", 0) >= before + 3:
                return True
            client.get("/healthz")  # let the test client's event loop run
            return False

        wait_until(flushed, 10, interval=0, message="no flush")
    assert _stored(served, PRIMARY_POSTER).get("thumbnail", 0) == before + 3


@pytest.mark.parametrize(
    "query",
    [
        "days=0",
        "days=367",
        "days=seven",
        "limit=0",
        "limit=101",
        "content_type=cartoons",
        "image_type=portrait",
    ],
)
def test_popular_refuses_bad_parameters(served: ServedData, query: str) -> None:
    with api(served) as client:
        answer = client.get(f"{POPULAR}?{query}")
    assert answer.status_code == 422
    body = answer.json()
    assert body["status"] == 422 and body["parameter"] == query.split("=")[0]


def test_popular_answers_with_cache_headers_and_is_in_the_openapi_schema(served: ServedData) -> None:
    with api(served) as client:
        answer = client.get(POPULAR)
        schema = client.get("/openapi.json").json()
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=60"
    body = answer.json()
    assert body["days"] == 7 and (body["until"] > body["since"])
    views = [item["views"] for item in body["items"]]
    assert views == sorted(views, reverse=True) and len(views) <= 20
    for item in body["items"]:
        assert sum(item["views_by_size"].values()) == item["views"]
        assert item["url"] == f"/api/v1/images/artwork/{item['artwork_id']}"
    operation = schema["paths"][POPULAR]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"content_type", "image_type", "days", "limit"}
    assert params["limit"]["schema"]["maximum"] == 100 and params["days"]["schema"]["default"] == 7
    assert "422" in operation["responses"]
