"""Loopback HTTP origins for tests: serve files from a directory, misbehave on chosen paths.

A LoopbackOrigin is a threaded `http.server` on 127.0.0.1 with an ephemeral port. Paths without a
route are served from `directory` (if given); a route maps a path to a behaviour, a function that
writes whatever it likes to the socket: a normal response, a redirect, a lying Content-Length, a
body that never ends, a byte a second, or nothing at all. The origin counts requests per path and
the most it had in flight at once (from arrival until the behaviour returns, so a request whose
response the client already holds may still count for a moment: measure exact concurrency inside
the behaviour).

    with LoopbackOrigin(tmp_path) as origin:
        origin.route("/flaky.jpg", sequence(respond(500), respond(200, b"...")))
        url = origin.url("/flaky.jpg")   # allow it with FetchPolicy(allowed_hosts={origin.netloc})
"""

from __future__ import annotations

import mimetypes
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tvdb_images_tests.support.loopback import LoopbackHTTPServer, LoopbackServer
from tvdb_images_tests.support.waiting import wait_until

Behaviour = Callable[["OriginHandler"], None]


class OriginHandler(BaseHTTPRequestHandler):
    """Handles one connection; behaviours write through the helpers below."""

    protocol_version = "HTTP/1.1"  # keep-alive, like real image hosts
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: LoopbackHTTPServer

    @property
    def origin(self) -> LoopbackOrigin:
        return self.server.origin

    @property
    def route_path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def do_GET(self) -> None:
        self.origin._dispatch(self)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def send_body(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_head(status, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def write(self, data: bytes) -> bool:
        """Send data now; False if the client has gone away."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            return False
        return True


class LoopbackOrigin(LoopbackServer):
    """A test HTTP server on 127.0.0.1:<ephemeral port>; start/stop it or use it as a context manager."""

    handler = OriginHandler
    poll_interval = 0.01

    def __init__(self, directory: Path | str | None = None) -> None:
        super().__init__()
        self.directory = Path(directory).resolve() if directory is not None else None
        self.routes: dict[str, Behaviour] = {}
        self.stopping = threading.Event()
        self.sent_bytes: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0

    def stop(self) -> None:
        self.stopping.set()  # behaviours that stall or trickle end now
        super().stop()

    # -- bookkeeping -------------------------------------------------------------------------------

    def route(self, path: str, behaviour: Behaviour) -> None:
        self.routes[path] = behaviour

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits[path]

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (e.g. a streaming one noticed its client left)."""
        try:
            wait_until(lambda: not self.in_flight, timeout, 0.01, "requests still in flight")
        except TimeoutError:
            return False
        return True

    def _dispatch(self, handler: OriginHandler) -> None:
        path = handler.route_path
        with self._lock:
            self._hits[path] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            behaviour = self.routes.get(path, serve_file)
            behaviour(handler)
        finally:
            with self._lock:
                self._in_flight -= 1


# -- behaviours --------------------------------------------------------------------------------------


def serve_file(handler: OriginHandler) -> None:
    """The default: a file under the origin's directory, or 404."""
    root = handler.origin.directory
    path = (root / handler.route_path.lstrip("/")).resolve() if root else None
    if root is None or path is None or not path.is_file() or not path.is_relative_to(root):
        handler.send_body(404, b"not found")
        return
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    handler.send_body(200, path.read_bytes(), {"Content-Type": content_type})


def respond(status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Behaviour:
    """A well-formed response with a correct Content-Length."""
    return lambda handler: handler.send_body(status, body, headers)


def redirect(location: str, status: int = 302) -> Behaviour:
    return respond(status, b"", {"Location": location})


def sequence(*behaviours: Behaviour) -> Behaviour:
    """The n-th request gets the n-th behaviour; the last one repeats."""
    count = 0
    lock = threading.Lock()

    def run(handler: OriginHandler) -> None:
        nonlocal count
        with lock:
            index = min(count, len(behaviours) - 1)
            count += 1
        behaviours[index](handler)

    return run


def slow(seconds: float, then: Behaviour) -> Behaviour:
    """Wait, then behave as `then`: keeps requests in flight long enough to overlap."""

    def run(handler: OriginHandler) -> None:
        time.sleep(seconds)
        then(handler)

    return run


def short_body(declared: int, body: bytes, headers: Mapping[str, str] | None = None) -> Behaviour:
    """Claim `declared` bytes, send `body`, close the connection: a Content-Length that lies."""

    def run(handler: OriginHandler) -> None:
        handler.send_head(200, {"Content-Length": str(declared), "Connection": "close", **(headers or {})})
        handler.write(body)
        handler.close_connection = True

    return run


def endless(chunk: bytes = b"\0" * 65536, limit: int = 1 << 30) -> Behaviour:
    """A body with no Content-Length that goes on until the client hangs up (or `limit` bytes).

    Bytes actually handed to the socket are counted in `origin.sent_bytes[path]`.
    """

    def run(handler: OriginHandler) -> None:
        handler.close_connection = True
        handler.send_head(200, {"Content-Type": "image/jpeg", "Connection": "close"})
        sent = 0
        while sent < limit and not handler.origin.stopping.is_set():
            if not handler.write(chunk):
                break
            sent += len(chunk)
            with handler.origin._lock:
                handler.origin.sent_bytes[handler.route_path] += len(chunk)

    return run


def trickle(interval: float, declared: int = 10_000) -> Behaviour:
    """Promise `declared` bytes, then send one every `interval` seconds until the client gives up."""

    def run(handler: OriginHandler) -> None:
        handler.close_connection = True
        handler.send_head(200, {"Content-Length": str(declared), "Content-Type": "image/png"})
        for _ in range(declared):
            if handler.origin.stopping.wait(interval) or not handler.write(b"x"):
                return

    return run


def hang(handler: OriginHandler) -> None:
    """Accept the request and never answer (until the origin stops)."""
    handler.close_connection = True
    handler.origin.stopping.wait()
