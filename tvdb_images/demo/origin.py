"""A local stand-in for TVDB's artwork host: serves a directory over HTTP on 127.0.0.1 only.

Its address is part of every demo artwork's URL, and a changed URL means a new download. So the
demo keeps the port a data directory's catalog was written with (`demo-origin-port` in the data
directory) and moves only when that port is taken, saying so.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tvdb_images.config import ConfigError

DEFAULT_ORIGIN_PORT = 8765
PORT_FILE = "demo-origin-port"


@dataclass
class Origin:
    """A running origin: its base URL and how many downloads it has answered."""

    url: str
    port: int
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1


class _QuietHandler(SimpleHTTPRequestHandler):
    origin: Origin | None = None

    def do_GET(self) -> None:
        if self.origin is not None:
            self.origin.count_request()
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def recorded_port(data_dir: Path) -> int | None:
    """The port this data directory's demo catalog was written with, if any."""
    try:
        return int((data_dir / PORT_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def serve_origin(
    directory: Path, data_dir: Path, *, requested_port: int | None = None, say=print
) -> Iterator[Origin]:
    """Serve `directory` until the block ends, on `requested_port` (it must be free), else on the port
    recorded for `data_dir`, else 8765; a taken preferred port falls back to a free one."""
    previous = recorded_port(data_dir)
    preferred = requested_port or previous or DEFAULT_ORIGIN_PORT
    origin = Origin(url="", port=0)
    handler = type("_CountingHandler", (_QuietHandler,), {"origin": origin})
    factory = functools.partial(handler, directory=str(directory))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", preferred), factory)
    except OSError as exc:
        if requested_port:
            raise ConfigError(
                f"--origin-port {requested_port}: cannot listen on 127.0.0.1:{requested_port} "
                f"({exc.strerror}): free the port or pick another"
            ) from None
        server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
        if previous:
            say(
                f"port {previous}, which this data directory's demo catalog uses, is taken: serving on "
                f"{server.server_address[1]}; the artworks' URLs change, so they are downloaded again"
            )
    origin.port = int(server.server_address[1])
    origin.url = f"http://127.0.0.1:{origin.port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PORT_FILE).write_text(f"{origin.port}\n", encoding="utf-8")
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="demo-origin", daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
