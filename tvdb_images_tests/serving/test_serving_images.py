"""The image, artwork and stats endpoints over data written by real pipeline runs, on the embedded
setup (SQLite + local directory) and on the production one (PostgreSQL + SeaweedFS S3)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from PIL import Image

from serving.access_log import ACCESS_LOGGER
from serving.conditional import content_version
from tvdb_images.catalog.models import Artwork
from tvdb_images.catalog.stats import storage_stats
from tvdb_images.imaging import fit_inside
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import SIZES
from tvdb_images_tests.support.serving_data import (
    ADMIN_TOKEN,
    AVIF_ARTWORK,
    MIRRORED,
    PRIMARY_POSTER,
    RecordingStore,
    ServedData,
    api,
)

BOXES = {
    "original": None,
    "large": (1920, 1080),
    "medium": (1280, 720),
    "small": (640, 360),
    "thumbnail": (300, 169),
}
DAY = "public, max-age=86400"
IMMUTABLE = "public, max-age=31536000, immutable"
AVIF_BROWSER = "image/avif,image/webp,*/*;q=0.8"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def renditions(data: ServedData, artwork_id: int) -> dict[tuple[str, str], Any]:
    with data.catalog.session() as session:
        return {(r.size, r.format): r for r in session.get(Artwork, artwork_id).renditions}


def decoded_size(body: bytes, expected_format: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == expected_format
        image.load()
        return image.size


def test_item_image_streams_the_primary_stored_artwork(served: ServedData) -> None:
    stored = renditions(served, PRIMARY_POSTER)
    with api(served) as client:
        for size in SIZES:
            response = client.get(f"/api/v1/images/series/101/poster/{size}")
            assert response.status_code == 200, response.text
            row = stored[(size, "webp")]
            assert response.headers["content-type"] == "image/webp"
            assert int(response.headers["content-length"]) == len(response.content) == row.bytes
            assert response.headers["etag"] == f'"{row.checksum}"'
            assert response.headers["cache-control"] == DAY
            assert response.headers["vary"] == "Accept"
            assert response.headers["x-artwork-id"] == str(PRIMARY_POSTER)
            assert response.content == served.store.get(Bucket.THUMBNAILS, row.storage_key)
            width, height = decoded_size(response.content, "WEBP")
            assert (width, height) == (row.width, row.height) == fit_inside(680, 1000, BOXES[size])


def test_versioned_urls_are_immutable_and_stale_versions_are_not(served: ServedData) -> None:
    row = renditions(served, PRIMARY_POSTER)[("small", "webp")]
    with api(served) as client:
        plain = client.get("/api/v1/images/series/101/poster/small")
        pinned = plain.headers["content-location"]
        version = content_version([row.checksum])
        assert pinned == f"/api/v1/images/artwork/{PRIMARY_POSTER}/small?format=webp&v={version}"
        exact = client.get(pinned)
        assert exact.status_code == 200 and exact.content == plain.content
        assert exact.headers["cache-control"] == IMMUTABLE
        assert "vary" not in exact.headers  # the format is in the URL, not negotiated
        stale = client.get(pinned.replace("&v=", "&v=0"))
        assert stale.status_code == 200 and stale.headers["cache-control"] == DAY
        item_version = content_version([row.checksum])  # one format stored for this size
        item = client.get(f"/api/v1/images/series/101/poster/small?v={item_version}")
        assert item.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"0000", {etag}', "*"],
)
def test_if_none_match_answers_304_without_a_body(served: ServedData, if_none_match: str) -> None:
    with api(served) as client:
        first = client.get("/api/v1/images/series/101/fanart/medium")
        etag = first.headers["etag"]
        again = client.get(
            "/api/v1/images/series/101/fanart/medium",
            headers={"If-None-Match": if_none_match.format(etag=etag)},
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == DAY and again.headers["vary"] == "Accept"
        other = client.get("/api/v1/images/series/101/fanart/medium", headers={"If-None-Match": '"0000"'})
        assert other.status_code == 200 and other.content == first.content


def test_head_reads_what_get_reads_and_leaves_the_bytes_in_the_cache(served: ServedData) -> None:
    """HEAD learns its answer as GET does (so a lost object is a 404 for both); a byte-cache-sized
    rendition it read is then served to the GET from memory."""
    recorder = RecordingStore(served.store)
    row = renditions(served, PRIMARY_POSTER)[("large", "webp")]
    with api(served, store=recorder) as client:
        response = client.head("/api/v1/images/series/101/poster/large")
        assert len(recorder.calls) == 1
        get = client.get("/api/v1/images/series/101/poster/large")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(row.bytes)
    assert response.headers["etag"] == f'"{row.checksum}"'
    assert response.headers["content-type"] == "image/webp"
    assert get.status_code == 200 and len(get.content) == row.bytes
    assert len(recorder.calls) == 1


def test_a_browser_that_accepts_both_formats_gets_the_smaller_encoding(served: ServedData) -> None:
    """Both formats of every size are recorded with their bytes; each negotiated answer is the smaller."""
    stored = renditions(served, AVIF_ARTWORK)
    both = [size for size in SIZES if (size, "avif") in stored and (size, "webp") in stored]
    assert both
    with api(served) as client:
        for size in both:
            avif, webp = stored[(size, "avif")], stored[(size, "webp")]
            smaller = avif if avif.bytes <= webp.bytes else webp
            answer = client.get(f"/api/v1/images/people/301/image/{size}", headers={"Accept": AVIF_BROWSER})
            assert answer.headers["etag"] == f'"{smaller.checksum}"', size
            assert len(answer.content) == smaller.bytes == min(avif.bytes, webp.bytes)
            assert answer.headers["vary"] == "Accept"


def test_accept_chooses_avif_when_the_client_names_it(served: ServedData) -> None:
    stored = renditions(served, AVIF_ARTWORK)
    assert {fmt for _, fmt in stored} == {"webp", "avif"}
    with api(served) as client:
        avif = client.get("/api/v1/images/people/301/image/small", headers={"Accept": "image/avif"})
        webp = client.get("/api/v1/images/people/301/image/small", headers={"Accept": "image/webp,*/*"})
        curl = client.get("/api/v1/images/people/301/image/small", headers={"Accept": "*/*"})
    assert avif.headers["content-type"] == "image/avif" and avif.headers["vary"] == "Accept"
    assert avif.headers["etag"] == f'"{stored[("small", "avif")].checksum}"'
    assert decoded_size(avif.content, "AVIF") == (
        stored[("small", "avif")].width,
        stored[("small", "avif")].height,
    )
    assert webp.headers["content-type"] == "image/webp" and curl.headers["content-type"] == "image/webp"
    assert decoded_size(webp.content, "WEBP") == fit_inside(300, 450, BOXES["small"])
    assert avif.headers["etag"] != webp.headers["etag"]
    # A version covers every format a negotiated URL can send.
    version = content_version([stored[("small", "avif")].checksum, stored[("small", "webp")].checksum])
    with api(served) as client:
        pinned = client.get(
            f"/api/v1/images/people/301/image/small?v={version}", headers={"Accept": AVIF_BROWSER}
        )
    assert pinned.headers["cache-control"] == IMMUTABLE


def test_mirrored_source_is_served_as_original_only(served: ServedData) -> None:
    source = (served.corpus_dir / MIRRORED[4]).read_bytes()
    with api(served) as client:
        original = client.get("/api/v1/images/movies/202/poster/original")
        small = client.get("/api/v1/images/movies/202/poster/small")
    assert original.status_code == 200
    assert original.headers["content-type"] == "image/jpeg"
    assert original.content == source and original.headers["content-length"] == str(len(source))
    assert decoded_size(original.content, "JPEG") == (680, 1000)
    assert small.status_code == 404
    body = small.json()
    assert body["code"] == "size_not_available" and body["details"]["available"] == [
        {"size": "original", "format": "jpeg"}
    ]


def test_artwork_metadata_lists_every_size_with_working_urls(served: ServedData) -> None:
    stored = renditions(served, AVIF_ARTWORK)
    with api(served) as client:
        response = client.get(f"/api/v1/images/artwork/{AVIF_ARTWORK}")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "processed" and body["is_primary"] is True
        assert body["source_url"] == served.origin.url("/tvdb/person_a.jpg")
        assert body["processed_at"].endswith(("+00:00", "Z"))
        assert (body["source_width"], body["source_height"]) == (300, 450)
        assert {(s["size"], s["format"]) for s in body["sizes"]} == set(stored)
        for entry in body["sizes"]:
            row = stored[(entry["size"], entry["format"])]
            assert (entry["width"], entry["height"], entry["bytes"]) == (row.width, row.height, row.bytes)
            # Root-relative without PUBLIC_BASE_URL: never built from the request's Host header.
            assert entry["url"].startswith("/api/v1/images/artwork/5030/")
            image = client.get(entry["url"])
            assert image.status_code == 200
            assert image.headers["cache-control"] == IMMUTABLE
            assert image.headers["etag"] == entry["etag"] == f'"{row.checksum}"'
            assert image.content == served.store.get(Bucket.THUMBNAILS, row.storage_key)
            assert decoded_size(image.content, entry["format"].upper()) == (row.width, row.height)


def test_primary_choice_skips_artwork_that_is_not_stored(served: ServedData) -> None:
    with api(served) as client:
        meta = {i: client.get(f"/api/v1/images/artwork/{i}").json() for i in (5001, 5002, 5003, 5004)}
        gone = client.get("/api/v1/images/artwork/5004/small")
    assert [meta[i]["is_primary"] for i in (5001, 5002, 5003, 5004)] == [False, False, True, False]
    assert meta[5004]["status"] == "gone" and meta[5004]["sizes"] == []
    assert gone.status_code == 404 and gone.json()["details"]["artwork_status"] == "gone"


@pytest.mark.parametrize(
    ("path", "status", "cause"),
    [
        ("/api/v1/images/seasons/501/poster/small", "pending", None),
        ("/api/v1/images/episodes/401/image/thumbnail", "failed", "truncated"),
    ],
)
def test_not_stored_yet_names_the_source(
    served: ServedData, path: str, status: str, cause: str | None
) -> None:
    with api(served) as client:
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["code"] == "image_not_stored" and body["status"] == 404
        assert body["details"]["artwork_status"] == status and body["details"]["failure_cause"] == cause
        assert body["details"]["source_url"].startswith(served.origin.url("/"))
        assert body["request_id"] == response.headers["x-request-id"]
    with api(served, missing_image_redirect=True) as client:
        redirect = client.get(path, follow_redirects=False)
        assert redirect.status_code == 302
        assert redirect.headers["location"] == body["details"]["source_url"]
    # Never an open redirect: a source on a host the pipeline may not fetch from is not redirected to.
    with api(served, missing_image_redirect=True, allowed_source_hosts=["artworks.thetvdb.com"]) as client:
        assert client.get(path, follow_redirects=False).status_code == 404


def test_unknown_items_and_types_are_404(served: ServedData) -> None:
    with api(served) as client:
        for path in (
            "/api/v1/images/series/101/banner/small",
            "/api/v1/images/series/999999/poster/small",
            "/api/v1/images/artwork/999999",
            "/api/v1/images/artwork/999999/small",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "artwork_not_found"


def test_cdn_base_url_redirects_to_the_rendition_on_the_cdn(served: ServedData) -> None:
    cdn = "https://cdn.example.test"
    recorder = RecordingStore(store_from_settings(served.settings.model_copy(update={"cdn_base_url": cdn})))
    row = renditions(served, PRIMARY_POSTER)[("medium", "webp")]
    with api(served, store=recorder, cdn_base_url=cdn) as client:
        response = client.get("/api/v1/images/series/101/poster/medium", follow_redirects=False)
        meta = client.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}").json()
    assert response.status_code == 307
    assert response.headers["location"] == f"https://cdn.example.test/{row.storage_key}"
    assert response.headers["vary"] == "Accept" and response.headers["cache-control"] == DAY
    assert {s["url"] for s in meta["sizes"]} == {
        f"https://cdn.example.test/{r.storage_key}" for r in renditions(served, PRIMARY_POSTER).values()
    }
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/images/shows/1/poster/small", "content_type"),
        ("/api/v1/images/series/1/logo/small", "image_type"),
        ("/api/v1/images/series/1/poster/huge", "size"),
        ("/api/v1/images/series/abc/poster/small", "content_id"),
        ("/api/v1/images/series/-1/poster/small", "content_id"),
        ("/api/v1/images/series/1.5/poster/small", "content_id"),
        ("/api/v1/images/series/9223372036854775808/poster/small", "content_id"),
        ("/api/v1/images/series/99999999999999999999999999999999/poster/small", "content_id"),
        ("/api/v1/images/series/101/poster/small?v=NOT-HEX", "v"),
        ("/api/v1/images/artwork/-5", "artwork_id"),
        ("/api/v1/images/artwork/5003/small?format=tiff", "format"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    embedded_data: ServedData, path: str, parameter: str
) -> None:
    recorder = RecordingStore(embedded_data.store)
    with api(embedded_data, store=recorder) as client:
        response = client.get(path)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_parameter" and body["parameter"] == parameter
    assert parameter in body["message"]
    assert recorder.calls == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/images/series/..%2f..%2fetc/poster/small",
        "/api/v1/images/series/101/poster/..%2f..%2f..%2fsecret",
        "/api/v1/images/series%2f..%2f101/poster/small",
        "/api/v1/images/series/101/poster%2f..%2f..%2fx/small",
        "/api/v1/images/%2e%2e/%2e%2e/poster/small",
        "/api/v1/images/series/101/%2e%2e%2f%2e%2e%2fpasswd/small",
        "/api/v1/images/artwork/5003/..%2f..%2fsmall",
        "/api/v1/images/series/101/poster/small%00.webp",
        "/api/v1/images/series/0x65/poster/small",
        "/api/v1/images/series/101/poster/small/../../../../etc/passwd",
    ],
)
def test_path_traversal_never_reaches_storage(embedded_data: ServedData, path: str) -> None:
    recorder = RecordingStore(embedded_data.store)
    with api(embedded_data, store=recorder) as client:
        response = client.get(path)
    assert response.status_code in (404, 422), (path, response.status_code)
    assert response.json()["code"] in ("not_found", "invalid_parameter")
    assert recorder.calls == []


def test_stats_match_the_catalog_and_a_recount_of_storage(served: ServedData) -> None:
    with served.catalog.session() as session:
        expected = storage_stats(session)
    with api(served) as client:
        body = client.get("/api/v1/images/storage/stats").json()
        assert body["counted_from"] == "catalog"
        assert (body["total_objects"], body["total_bytes"]) == (expected.total_objects, expected.total_bytes)
        assert body["total_size_mb"] == expected.total_size_mb
        assert body["renditions"] == expected.renditions and body["originals"] == expected.originals
        assert sum(g["objects"] for g in body["by_content_type"].values()) == expected.total_objects
        assert sum(g["bytes"] for g in body["by_size"].values()) == expected.total_bytes
        # 6 artworks rendered in 5 sizes as WebP, one of them also as AVIF; 6 sources + the mirrored one
        # (counted once: its "original" rendition row is the source object itself).
        assert body["by_size"]["small"]["objects"] == 6 + 1 and body["by_size"]["source"]["objects"] == 7
        assert body["total_objects"] == 6 * 5 + 5 + 7
        assert {r["status"] for r in body["artwork_by_status"]} >= {"processed", "failed", "gone", "pending"}
        assert body["failures_by_cause"]["truncated"] == 1

        assert client.get("/api/v1/images/storage/stats?recount=true").status_code == 401
        recount = client.get("/api/v1/images/storage/stats?recount=true", headers=ADMIN).json()
        assert recount["counted_from"] == "storage" and recount["truncated"] is False
        for name in ("total_objects", "total_bytes", "renditions", "originals", "by_content_type", "by_size"):
            assert recount[name] == body[name], name
        assert recount["unrecognized_objects"] == 0
        bounded = client.get("/api/v1/images/storage/stats?recount=true&max_objects=3", headers=ADMIN).json()
        assert bounded["truncated"] is True and bounded["total_objects"] == 3

        stray = "series/not-a-layout-key.txt"
        served.store.put(Bucket.THUMBNAILS, stray, b"stray", content_type="text/plain")
        try:
            again = client.get("/api/v1/images/storage/stats?recount=true", headers=ADMIN).json()
        finally:
            served.store.delete(Bucket.THUMBNAILS, [stray])
        assert again["unrecognized_objects"] == 1 and again["total_objects"] == body["total_objects"]
    with api(served, admin_api_token=None) as client:
        disabled = client.get("/api/v1/images/storage/stats?recount=true", headers=ADMIN)
    assert disabled.status_code == 503 and disabled.json()["code"] == "admin_disabled"


def test_access_log_is_one_json_line_per_request(embedded_data: ServedData) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    try:
        with api(embedded_data) as client:
            image = client.get(
                "/api/v1/images/series/101/poster/thumbnail?x=1", headers={"X-Request-ID": "req-42"}
            )
            client.get("/api/v1/images/shows/1/poster/small", headers={"X-Request-ID": "bad id with spaces"})
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)
    first, second = (json.loads(line) for line in lines)
    assert first["method"] == "GET" and first["path"] == "/api/v1/images/series/101/poster/thumbnail"
    assert first["query"] == "x=1" and first["status"] == 200 and first["request_id"] == "req-42"
    assert first["bytes"] == len(image.content) and first["duration_ms"] >= 0 and first["client"]
    assert image.headers["x-request-id"] == "req-42"
    assert second["status"] == 422 and second["request_id"] != "bad id with spaces"


def test_openapi_documents_every_endpoint_and_the_error_shape(embedded_data: ServedData) -> None:
    with api(embedded_data) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    expected = {
        "/api/v1/images/{content_type}/{content_id}/{image_type}/manifest": {"get", "head"},
        "/api/v1/images/artwork/{artwork_id}/manifest": {"get", "head"},
        "/api/v1/images/{content_type}/{content_id}/{image_type}/{size}": {"get", "head"},
        "/api/v1/images/artwork/{artwork_id}": {"get"},
        "/api/v1/images/artwork/{artwork_id}/{size}": {"get", "head"},
        "/api/v1/images/storage/stats": {"get"},
        "/api/v1/images/stats/popular": {"get"},
        "/api/v1/admin/sync/images/{content_type}/{content_id}": {"post"},
        "/api/v1/admin/sync/images/missing": {"post"},
        "/api/v1/admin/sync/images/cleanup": {"post"},
        "/api/v1/admin/tasks/{task_id}": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }
    assert {path: set(ops) for path, ops in spec["paths"].items()} == expected
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") and operation.get("description"), (path, method)
            for parameter in operation.get("parameters", []):
                assert parameter.get("schema") and parameter.get("description"), (path, method, parameter)
            if operation.get("parameters"):
                schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, (path, method)
    image = spec["paths"]["/api/v1/images/{content_type}/{content_id}/{image_type}/{size}"]["get"]
    assert {"200", "304", "307", "302", "404", "422", "503"} <= set(image["responses"])
    assert image["parameters"][0]["schema"]["$ref"].endswith("ContentType")
    assert spec["components"]["schemas"]["ContentType"]["enum"] == [
        "episodes",
        "movies",
        "people",
        "seasons",
        "series",
    ]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
