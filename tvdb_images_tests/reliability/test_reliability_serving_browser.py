"""The serving API behind a proxy and in a browser: `tvdb-images serve` as a real uvicorn process over
PostgreSQL + SeaweedFS data from a real sync, asked what a proxy, a CDN and a web page on another
origin ask. Each case is recorded for docs/reliability.md (section "The serving API at its edges")."""

from __future__ import annotations

import json
import re
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from tvdb_images.catalog.models import Artwork
from tvdb_images_tests.reliability.test_reliability_serving_edge import IMAGE, edge, serve
from tvdb_images_tests.support.raw_http import RawResponse, request, send
from tvdb_images_tests.support.serving_data import PRIMARY_POSTER, ServedData

PUBLIC = "https://images.example/media"
APP_ORIGIN = "https://app.example"


def _with_host(port: int, target: str, host: str, headers: dict[str, str] | None = None) -> RawResponse:
    """A request whose Host header is the attacker's (raw_http.request sends 127.0.0.1 otherwise)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return send(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


def test_public_urls_cors_and_http_caching(production_data: ServedData, tmp_path: Path) -> None:
    env = {"PUBLIC_BASE_URL": PUBLIC, "CORS_ALLOW_ORIGINS": APP_ORIGIN}
    with serve(production_data, tmp_path, env) as (port, _):
        metadata = _with_host(port, f"/api/v1/images/artwork/{PRIMARY_POSTER}", "evil.example")
        slash = _with_host(port, "/api/v1/images/storage/stats/", "evil.example")
        cors_get = request(port, f"/api/v1/images/artwork/{PRIMARY_POSTER}", {"Origin": APP_ORIGIN})
        preflight = request(
            port,
            IMAGE,
            {
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "if-none-match",
            },
            method="OPTIONS",
        )
        stranger = request(port, IMAGE, {"Origin": "https://other.example"})
        image = request(port, IMAGE)
        last_modified = image.headers.get("last-modified", "")
        since_same = request(port, IMAGE, {"If-Modified-Since": last_modified})
        since_before = request(port, IMAGE, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        ranged = request(port, IMAGE, {"Range": "bytes=0-9"})
        wrong_method = request(port, IMAGE, {"Content-Length": "0"}, method="POST")
        not_found = request(port, "/api/v1/images/series/999999/poster/small")
        stats = request(port, "/api/v1/images/storage/stats")

    urls = [entry["url"] for entry in json.loads(metadata.body)["sizes"]]
    edge(
        7,
        "`Host: evil.example` on artwork metadata and on a trailing-slash URL",
        f"URLs start with {sorted({u.split('/api/')[0] for u in urls})}; trailing slash: {slash.status}, "
        f"Location: {slash.headers.get('location')}",
    )
    assert urls and all(url.startswith(f"{PUBLIC}/api/v1/images/artwork/{PRIMARY_POSTER}/") for url in urls)
    assert b"evil.example" not in metadata.body + slash.body and slash.status == 404
    assert "location" not in slash.headers

    edge(
        7,
        f"CORS_ALLOW_ORIGINS={APP_ORIGIN}: GET, preflight, another origin",
        f"{cors_get.headers.get('access-control-allow-origin')}, {preflight.status} "
        f"({preflight.headers.get('access-control-allow-methods')}), "
        f"{stranger.headers.get('access-control-allow-origin')}",
    )
    assert cors_get.headers.get("access-control-allow-origin") == APP_ORIGIN
    assert "etag" in cors_get.headers.get("access-control-expose-headers", "").lower()
    assert preflight.status == 200 and "GET" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in stranger.headers

    nosniff = [r.headers.get("x-content-type-options") for r in (image, metadata, not_found, stats, ranged)]
    edge(7, "X-Content-Type-Options on image, metadata, 404, stats, ranged", f"{nosniff}")
    assert nosniff == ["nosniff"] * 5

    with production_data.catalog.session() as session:
        processed_at = session.get(Artwork, PRIMARY_POSTER).processed_at.astimezone(UTC)
    edge(
        7,
        "Last-Modified; If-Modified-Since equal / in 2001",
        f"{last_modified!r}; {since_same.status} / {since_before.status}",
    )
    assert last_modified == format_datetime(processed_at.replace(microsecond=0), usegmt=True)
    assert parsedate_to_datetime(last_modified) <= processed_at
    assert (since_same.status, since_before.status) == (304, 200)

    edge(
        7,
        "`Range: bytes=0-9` on an image",
        f"{ranged.status}, Accept-Ranges: {ranged.headers.get('accept-ranges')}, {len(ranged.body)} bytes",
    )
    assert ranged.status == 200 and ranged.headers["accept-ranges"] == "none" and ranged.body == image.body

    edge(7, "POST on an image URL", f"{wrong_method.status}, Allow: {wrong_method.headers.get('allow')}")
    assert wrong_method.status == 405 and wrong_method.headers["allow"] == "GET, HEAD"

    edge(
        7,
        "Cache-Control of metadata JSON / stats JSON",
        f"{metadata.headers.get('cache-control')} / {stats.headers.get('cache-control')}",
    )
    assert metadata.headers["cache-control"] == "public, max-age=60"
    assert stats.headers["cache-control"] == "public, max-age=30"


def test_docs_work_offline_declare_the_bearer_scheme_and_can_be_turned_off(
    production_data: ServedData, tmp_path: Path
) -> None:
    with serve(production_data, tmp_path) as (port, _):
        page = request(port, "/docs")
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.body.decode())
        fetched = {asset: request(port, asset).status for asset in assets}
        schema = json.loads(request(port, "/openapi.json").body)
        no_cors = request(port, IMAGE, {"Origin": "https://app.example"})
        relative = _with_host(port, f"/api/v1/images/artwork/{PRIMARY_POSTER}", "evil.example")
    schemes = schema["components"]["securitySchemes"]
    secured = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    edge(7, "/docs: assets it loads, and where from", f"{sorted(fetched.items())}")
    edge(7, "OpenAPI security schemes / operations that declare one", f"{schemes} / {len(secured)}")
    assert page.status == 200 and assets and all(a.startswith("/docs/assets/") for a in assets)
    assert set(fetched.values()) == {200}
    assert schemes == {
        "AdminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["AdminToken"]["description"],
        }
    }
    assert "POST /api/v1/admin/sync/images/missing" in secured
    assert "access-control-allow-origin" not in no_cors.headers  # CORS is off by default
    relative_urls = [entry["url"] for entry in json.loads(relative.body)["sizes"]]
    assert all(url.startswith("/api/v1/") for url in relative_urls)  # no PUBLIC_BASE_URL: root-relative

    with serve(production_data, tmp_path, {"API_DOCS": "false"}) as (port, _):
        off = [
            request(port, path).status for path in ("/docs", "/openapi.json", "/docs/assets/swagger-ui.css")
        ]
    edge(7, "API_DOCS=false: /docs, /openapi.json, assets", f"{off}")
    assert off == [404, 404, 404]
