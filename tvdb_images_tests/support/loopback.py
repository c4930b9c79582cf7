"""The start/stop part every loopback test server shares: a threaded `http.server` on 127.0.0.1 with
an ephemeral port, run in a daemon thread, usable as a context manager."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    origin: Any  # the LoopbackServer that owns it, for the handlers


class LoopbackServer:
    """Subclasses name their `handler`; handlers reach the subclass as `self.server.origin`."""

    host = "127.0.0.1"
    handler: type[BaseHTTPRequestHandler]
    poll_interval = 0.05

    def __init__(self) -> None:
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = LoopbackHTTPServer((self.host, 0), self.handler)
        server.origin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": self.poll_interval}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def netloc(self) -> str:
        """The "127.0.0.1:port" allow-list entry for this server."""
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"
