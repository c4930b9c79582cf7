"""CORS as a browser enforces it: Debian's chromium (Playwright) opens pages served from two other
loopback origins and `fetch()`es the real API (`tvdb-images serve` over PostgreSQL + SeaweedFS data
from a real sync) with `CORS_ALLOW_ORIGINS` naming one of them.

The listed origin reads artwork metadata and the exposed headers; the other one's reads are blocked
by the browser; the admin endpoint's preflight (POST with `Authorization`) lets the listed origin's
request through to the token check and stops the other's before the POST is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvdb_images_tests.support.browser import chromium, serve_page
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN, PRIMARY_POSTER, ServedData, serve

pytestmark = pytest.mark.browser

METADATA = f"/api/v1/images/artwork/{PRIMARY_POSTER}"
ADMIN_SYNC = "/api/v1/admin/sync/images/series/101"
# What the page runs: each fetch's outcome as its script sees it (status, body, an exposed header).
FETCH_SCRIPT = """async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        const body = await response.text();
        return {ok: true, status: response.status, body, requestId: response.headers.get("x-request-id")};
    } catch (error) {
        return {ok: false, error: `${error.name}: ${error.message}`};
    }
}"""


APP_PAGE = b"<!doctype html><title>app</title><p>app"  # the test's script runs in it


@pytest.fixture
def app_origins() -> Iterator[tuple[str, str]]:
    """Two loopback origins (two ports) serving the application page: (listed, not listed)."""
    with serve_page(APP_PAGE) as listed, serve_page(APP_PAGE) as stranger:
        yield listed, stranger


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def _fetch_from(browser, origin: str, url: str, init: dict) -> dict:
    """`fetch(url, init)` run by a page loaded from `origin`."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{origin}/")
        return page.evaluate(FETCH_SCRIPT, [url, init])
    finally:
        context.close()


def _access_log(log: Path) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "http_request"]


def test_a_browser_reads_the_api_only_from_a_listed_origin(
    production_data: ServedData, tmp_path: Path, app_origins: tuple[str, str], browser
) -> None:
    listed, stranger = app_origins
    with serve(production_data, tmp_path, {"CORS_ALLOW_ORIGINS": listed}) as (port, process):
        api = f"http://127.0.0.1:{port}"
        allowed = _fetch_from(browser, listed, f"{api}{METADATA}?from=listed", {})
        blocked = _fetch_from(browser, stranger, f"{api}{METADATA}?from=stranger", {})
        post = {"method": "POST", "headers": {"Authorization": "Bearer not-the-token"}}
        admin_wrong = _fetch_from(browser, listed, f"{api}{ADMIN_SYNC}?from=listed-wrong", post)
        post_right = {"method": "POST", "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
        admin_right = _fetch_from(browser, listed, f"{api}{ADMIN_SYNC}?from=listed-right", post_right)
        admin_stranger = _fetch_from(browser, stranger, f"{api}{ADMIN_SYNC}?from=stranger", post_right)
        seen = {(r["method"], r["query"]): r["status"] for r in _access_log(process.log_path)}

    # The listed origin reads the metadata JSON and the X-Request-ID the API exposes.
    assert allowed["ok"] and allowed["status"] == 200, allowed
    metadata = json.loads(allowed["body"])
    assert metadata["artwork_id"] == PRIMARY_POSTER and metadata["sizes"]
    assert allowed["requestId"] and len(allowed["requestId"]) == 32
    # Another origin: the request is a simple GET, so it is sent and answered, but the browser
    # withholds the answer from the page.
    assert not blocked["ok"] and blocked["error"].startswith("TypeError"), blocked
    assert seen[("GET", "from=stranger")] == 200

    # Admin POST with Authorization: the listed origin's preflight passes, the token decides.
    assert seen[("OPTIONS", "from=listed-wrong")] == 200
    assert admin_wrong["ok"] and admin_wrong["status"] == 401, admin_wrong
    assert json.loads(admin_wrong["body"])["code"] == "unauthorized"
    # The right token is accepted; this API has no Dagster to launch through (documented 503).
    assert admin_right["ok"] and admin_right["status"] == 503, admin_right
    assert json.loads(admin_right["body"])["code"] == "dagster_unavailable"
    # Another origin's preflight is refused, so the POST is never sent.
    assert not admin_stranger["ok"] and admin_stranger["error"].startswith("TypeError"), admin_stranger
    assert seen[("OPTIONS", "from=stranger")] == 400
    assert ("POST", "from=stranger") not in seen
