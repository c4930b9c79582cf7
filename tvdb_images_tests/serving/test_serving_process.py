"""`tvdb-images serve` as operators run it: a real uvicorn process on a free port, configured only by
environment variables, answering over real HTTP and writing its access log to stdout."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tvdb_images.catalog.models import Artwork
from tvdb_images.storage import Bucket
from tvdb_images_tests.support.processes import ManagedProcess, start_api_server
from tvdb_images_tests.support.serving_data import PRIMARY_POSTER, ServedData


@dataclass
class Server:
    base_url: str
    port: int
    process: ManagedProcess


@pytest.fixture
def server(served: ServedData, tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, **served.env, "PYTHONUNBUFFERED": "1"}
    process, port = start_api_server(
        "tvdb-images-serve",
        env,
        cwd=tmp_path,  # no project .env: the environment alone configures it
        log_dir=tmp_path,
    )
    try:
        yield Server(f"http://127.0.0.1:{port}", port, process)
    finally:
        process.stop()


def _raw_status(port: int, target: str) -> int:
    """Send a request line exactly as written (no client-side path normalization) and read the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_tvdb_images_serve_answers_over_real_http(served: ServedData, server: Server) -> None:
    with served.catalog.session() as session:
        row = next(r for r in session.get(Artwork, PRIMARY_POSTER).renditions if r.size == "medium")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        image = client.get("/api/v1/images/series/101/poster/medium", headers={"User-Agent": "serving-test"})
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/webp"
        assert image.headers["content-length"] == str(row.bytes)
        assert image.headers["etag"] == f'"{row.checksum}"'
        assert image.content == served.store.get(Bucket.THUMBNAILS, row.storage_key)
        with Image.open(io.BytesIO(image.content)) as decoded:
            assert decoded.size == (row.width, row.height) == (490, 720)
        revalidated = client.get(
            "/api/v1/images/series/101/poster/medium", headers={"If-None-Match": image.headers["etag"]}
        )
        assert revalidated.status_code == 304 and revalidated.content == b""
        head = client.head("/api/v1/images/series/101/poster/medium")
        assert head.status_code == 200 and head.headers["content-length"] == str(row.bytes)
        assert head.content == b""
        assert client.get("/docs").status_code == 200

    for target in (
        "/api/v1/images/series/101/poster/../../../../../etc/passwd",
        "/api/v1/images/series/101/../../../../etc/passwd/small",
        "/api/v1/images/series/101/poster/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/images/../../etc/passwd",
        "/api/v1/images/series/101/poster/small/..%5c..%5c..%5cwindows",
    ):
        assert _raw_status(server.port, target) in (404, 422), target

    server.process.stop()
    # A clean shutdown on SIGTERM (uvicorn re-raises the signal once it has finished).
    assert server.process.process is not None
    assert server.process.process.returncode in (0, -signal.SIGTERM)
    log = server.process.log_tail(200_000)
    assert "Traceback" not in log
    lines = [json.loads(line) for line in log.splitlines() if '"http_request"' in line]
    served_image = next(
        line for line in lines if line["path"].endswith("/poster/medium") and line["method"] == "GET"
    )
    assert served_image["status"] == 200 and served_image["bytes"] == row.bytes
    assert served_image["user_agent"] == "serving-test" and served_image["client"] == "127.0.0.1"
    assert served_image["duration_ms"] > 0
    assert {line["status"] for line in lines} >= {200, 304, 404}
