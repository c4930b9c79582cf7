"""A loopback origin that behaves like an image host with validators: ETag and Last-Modified on every
response, 304 to a conditional GET whose validators still match, HEAD, and files replaced in place.

Every request is counted by method, path and status, so a test (or the revalidation benchmark) can
say exactly what a pass cost the origin.

    with ValidatingOrigin() as origin:
        origin.put("/poster.jpg", jpeg_bytes)              # ETag and Last-Modified
        origin.put("/plain.jpg", jpeg_bytes, validators=False)
        origin.count("GET", status=304)
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from tvdb_images_tests.support.loopback import LoopbackHTTPServer, LoopbackServer


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: datetime | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: LoopbackHTTPServer

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, *, head: bool) -> None:
        origin = self.server.origin
        path = unquote(urlsplit(self.path).path)
        resource = origin.resources.get(path)
        if resource is None:
            status = 404
            self._send(404, b"not found", {"Content-Type": "text/plain"}, head)
        else:
            headers = _validator_headers(resource)
            if not head and _not_modified(self.headers, resource):
                status = 304
                self._send(304, b"", headers, head=True, length=False)
            else:
                status = 200
                if resource.content_type:
                    headers["Content-Type"] = resource.content_type
                self._send(200, resource.body, headers, head)
        with origin._lock:
            origin.requests[(self.command, path, status)] += 1

    def _send(
        self, status: int, body: bytes, headers: dict[str, str], head: bool, *, length: bool = True
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _validator_headers(resource: Resource) -> dict[str, str]:
    headers: dict[str, str] = {}
    if resource.etag:
        headers["ETag"] = resource.etag
    if resource.last_modified:
        headers["Last-Modified"] = format_datetime(resource.last_modified, usegmt=True)
    return headers


def _not_modified(request_headers, resource: Resource) -> bool:
    """RFC 9110: If-None-Match decides when present (weak comparison); else If-Modified-Since."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        if resource.etag is None:
            return False
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in wanted or resource.etag.removeprefix("W/") in wanted
    since = request_headers.get("If-Modified-Since")
    if since is None or resource.last_modified is None:
        return False
    try:
        return resource.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


class ValidatingOrigin(LoopbackServer):
    """In-memory files on 127.0.0.1:<ephemeral port>, with validators and conditional GET."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.resources: dict[str, Resource] = {}
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self._lock = threading.Lock()

    def put(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str | None = "image/jpeg",
        validators: bool = True,
        etag: bool = True,
        last_modified: datetime | None = None,
    ) -> None:
        """Serve `body` at `path` (replacing what was there), with a content-derived ETag and a
        Last-Modified of now unless told otherwise."""
        tag = f'"{hashlib.sha256(body).hexdigest()[:20]}"' if validators and etag else None
        modified = (last_modified or datetime.now(UTC)) if validators else None
        self.resources[path] = Resource(body, content_type, tag, modified)

    def remove(self, path: str) -> None:
        self.resources.pop(path, None)

    def count(self, method: str | None = None, *, status: int | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (m, p, s), n in self.requests.items()
                if (method is None or m == method)
                and (status is None or s == status)
                and (path is None or p == path)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
