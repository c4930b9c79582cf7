"""The image fast path (serving.fast_path) answers exactly what FastAPI's routes answer: the same
status, headers (but Date and the request id), body, access log line, metrics and view counts, over a
matrix of sizes, formats, Accept, conditional headers, HEAD, CDN on and off, streaming and stale
artwork, and for the requests it leaves to FastAPI (invalid ones)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving import fast_path
from serving.access_log import ACCESS_LOGGER, AccessLineHandler
from serving.app import create_app
from serving.conditional import content_version
from tvdb_images.catalog.models import Artwork
from tvdb_images_tests.support.serving_data import AVIF_ARTWORK, PRIMARY_POSTER, ServedData

IGNORED_HEADERS = {"date", "x-request-id"}
COUNTED = ("_http_requests_total", "_http_response_bytes_total", "_http_not_modified", "_http_redirects")
PATHS = [
    *(f"/api/v1/images/series/101/poster/{size}" for size in ("original", "large", "small", "thumbnail")),
    "/api/v1/images/series/101/fanart/medium",
    "/api/v1/images/movies/202/poster/original",  # mirrored source
    "/api/v1/images/movies/202/poster/small",  # mirrored: no such size
    "/api/v1/images/seasons/501/poster/small",  # not stored yet
    "/api/v1/images/people/301/image/small",  # has AVIF
    "/api/v1/images/series/999/poster/small",  # no such artwork
    f"/api/v1/images/artwork/{PRIMARY_POSTER}/medium",
    f"/api/v1/images/artwork/{PRIMARY_POSTER}/small?format=webp",
    f"/api/v1/images/artwork/{PRIMARY_POSTER}/small?format=avif",
    f"/api/v1/images/artwork/{AVIF_ARTWORK}/small?format=avif",
    "/api/v1/images/artwork/99999/small",
    "/api/v1/images/series/101/poster/small?v=0",
]
# Left to FastAPI: invalid parameters, unknown, repeated or empty query values, the manifest route.
LEFT_TO_FASTAPI = [
    "/api/v1/images/series/101/poster/small?unknown=1",
    "/api/v1/images/series/0101/poster/small",
    "/api/v1/images/series/9223372036854775808/poster/small",
    "/api/v1/images/shows/101/poster/small",
    "/api/v1/images/series/101/poster/huge",
    "/api/v1/images/series/101/poster/small?v=",
    "/api/v1/images/series/101/poster/small?v=0&v=1",
    f"/api/v1/images/artwork/{PRIMARY_POSTER}/small?format=tiff",
    "/api/v1/images/series/101/poster/manifest",
]
ACCEPTS = [None, "image/avif,image/webp,*/*;q=0.8", "image/webp", "image/png"]


@contextmanager
def client(data: ServedData, *, fast_path: bool, **settings: Any) -> Iterator[TestClient]:
    app = create_app(
        data.settings.model_copy(update=settings), catalog=data.catalog, store=data.store, fast_path=fast_path
    )
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def versioned_paths(data: ServedData) -> list[str]:
    with data.catalog.session() as session:
        artwork = session.get(Artwork, PRIMARY_POSTER)
        checksums = [r.checksum for r in artwork.renditions if r.size == "small"]
    return [f"/api/v1/images/series/101/poster/small?v={content_version(checksums)}"]


def requests(paths: list[str]) -> Iterator[tuple[str, str, dict[str, str]]]:
    for path in paths:
        for method in ("GET", "HEAD"):
            for accept in ACCEPTS:
                headers = {"X-Request-ID": "same"} | ({"Accept": accept} if accept else {})
                yield method, path, headers


def answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in IGNORED_HEADERS)
    return response.status_code, headers, response.content


def counted(test_client: TestClient) -> list[str]:
    text = test_client.get("/metrics").text
    return sorted(
        line
        for line in text.splitlines()
        if '"/api/v1/images' in line and line.split("{")[0].endswith(COUNTED)
    )


def fast_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per request the fast path answered itself."""
    answered: list[bool] = []
    for name in ("item_image", "artwork_image"):
        original = getattr(fast_path, name)

        async def counting(*args: Any, _original: Any = original) -> Any:
            answered.append(True)
            return await _original(*args)

        monkeypatch.setattr(fast_path, name, counting)
    return answered


def compare(data: ServedData, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> int:
    """Each request (and its conditional repeats) to both apps; the count of requests compared."""
    answered = fast_answers(monkeypatch)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, logger = Collect(), logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    compared = 0
    sent: list[tuple[bool, str]] = []
    try:
        with (
            client(data, fast_path=True, **settings) as fast,
            client(data, fast_path=False, **settings) as slow,
        ):
            for method, path, headers in requests(PATHS + versioned_paths(data) + LEFT_TO_FASTAPI):
                first = fast.request(method, path, headers=headers)
                assert answer(first) == answer(slow.request(method, path, headers=headers)), (method, path)
                conditions = [{"If-None-Match": "*"}, {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}]
                if "etag" in first.headers:
                    conditions.append({"If-None-Match": f'"x", {first.headers["etag"]}'})
                for condition in conditions:
                    again = fast.request(method, path, headers=headers | condition)
                    assert answer(again) == answer(slow.request(method, path, headers=headers | condition))
                compared += 1 + len(conditions)
                sent += [(path not in LEFT_TO_FASTAPI, path)] * (1 + len(conditions))
            assert counted(fast) == counted(slow)
            # The fast path answered every valid image request (and the slow app none).
            assert answered == [fast for fast, _ in sent if fast] and answered
            fast_views = fast.app.state.serving.views.counter.take().counts  # type: ignore[attr-defined]
            slow_views = slow.app.state.serving.views.counter.take().counts  # type: ignore[attr-defined]
            assert fast_views == slow_views and fast_views
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    logged = [json.loads(line) for line in lines]
    for entry in logged:
        del entry["ts"], entry["duration_ms"]
    # Interleaved fast, slow, fast, slow: each pair logged the same line; then the two /metrics scrapes.
    images = logged[:-2]
    assert len(images) == 2 * compared and images[0::2] == images[1::2]
    return compared


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"cdn_base_url": "https://cdn.example.com/thumbnails"},
        {"missing_image_redirect": True, "serving_byte_cache_mb": 0},  # every GET streamed from storage
    ],
    ids=["bytes", "cdn", "streamed"],
)
def test_fast_path_answers_exactly_as_the_routes(
    served: ServedData, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compare(served, monkeypatch, **settings) > 300


def test_fast_path_answers_stale_artwork_exactly_as_the_routes(
    served: ServedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served.catalog.session() as session:
        session.get(Artwork, PRIMARY_POSTER).stale_since = datetime(2026, 1, 1, tzinfo=UTC)
        session.commit()
    try:
        with client(served, fast_path=True) as fast:
            assert (
                fast.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}/small").headers["x-artwork-stale"]
                == "true"
            )
        compare(served, monkeypatch)
    finally:
        with served.catalog.session() as session:
            session.get(Artwork, PRIMARY_POSTER).stale_since = None
            session.commit()


def test_access_lines_are_written_directly_only_while_the_own_handler_is_alone(
    embedded_data: ServedData,
) -> None:
    """The line written straight to the stream is the one `logger.info` writes through the handler."""
    logger = logging.getLogger(ACCESS_LOGGER)
    saved, level = list(logger.handlers), logger.level
    direct, through = io.StringIO(), io.StringIO()
    own = AccessLineHandler(direct)
    own.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [own]
    logger.setLevel(logging.INFO)
    try:
        with client(embedded_data, fast_path=True) as test_client:
            headers = {"X-Request-ID": "direct-1"}
            assert (
                test_client.get("/api/v1/images/series/101/poster/small", headers=headers).status_code == 200
            )
            other = logging.StreamHandler(through)
            logger.addHandler(other)  # now every line goes through logging, to both handlers
            headers = {"X-Request-ID": "direct-2"}
            assert (
                test_client.get("/api/v1/images/series/101/poster/small", headers=headers).status_code == 200
            )
    finally:
        logger.handlers, logger.level = saved, level
    first, second = direct.getvalue().splitlines()
    assert through.getvalue().splitlines() == [second]
    one, two = json.loads(first), json.loads(second)
    assert (one["request_id"], two["request_id"]) == ("direct-1", "direct-2")
    assert {k: v for k, v in one.items() if k not in ("ts", "duration_ms", "request_id")} == {
        k: v for k, v in two.items() if k not in ("ts", "duration_ms", "request_id")
    }
