"""Run the API under uvicorn, as `tvdb-images serve` does.

Three choices here are measured (docs/performance.md, section 5):

- **The event loop** (`--loop auto`): asyncio's for one worker, uvloop for several. Saturated by 64
  keep-alive connections, one uvloop process answered some connections hundreds of milliseconds late
  while it answered the others in 12 ms (p99 150 ms, even for a bare ASGI app that burns 150 µs per
  request), where asyncio's loop answered as many requests with a p99 of 16 ms. But with several
  workers on one listening socket, asyncio accepts every pending connection in one go, so a burst of
  new connections can all land on one worker (all 64 of them in one run out of five: half the
  throughput), which uvloop's accepting did not do. The HTTP parser is httptools either way.
- **The startup heap is frozen** (`gc.freeze()`): FastAPI, SQLAlchemy and botocore's models leave
  ~100,000 objects that live as long as the process, and every full collection walked them all,
  stopping the event loop for ~80 ms every few seconds under load (2-3 ms once frozen).
- **TCP_NODELAY with several workers.** With `--workers` > 1 uvicorn binds the listening socket
  itself, leaving its protocol number at 0; asyncio turns Nagle's algorithm off only on sockets that
  say IPPROTO_TCP, so every keep-alive response whose body follows its headers waited ~40 ms for the
  client's delayed ACK (1,700 instead of 8,000 req/s; uvicorn issue #3149). The socket is re-labelled
  as TCP here before the workers inherit it.

Three more keep a loaded machine and hostile clients in check:

- **Workers are not killed while they import.** uvicorn's supervisor pings each worker and replaces
  one that does not answer within `timeout_worker_healthcheck` (5 s by default); a spawned worker
  answers only once it has unpickled its config, which imports this module. On a saturated 2-core
  machine importing the app took 12 s, so workers were replaced every few seconds for minutes. The
  timeout is SERVING_WORKER_HEALTHCHECK_SECONDS, and this module imports the app only when the worker
  builds it (`create_served_app`), after the ping thread runs.
- **Headers are bounded** by the protocol in `serving.http_guard` (size, count, time to send them).
- **X-Forwarded-For is not uvicorn's to believe.** uvicorn trusts it from 127.0.0.1 by default, so any
  loopback client could name itself; proxy headers are handled by the app, from TRUSTED_PROXIES only.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import Multiprocess

from serving.http_guard import PROTOCOL
from serving.metrics_dir import mark_dead, metrics_directory
from tvdb_images.config import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

APP = "serving.server:create_served_app"
STARTUP_FAILURE = 3
# The number of worker processes, for per-process budgets (the convention uvicorn and gunicorn read).
WORKERS_ENV = "WEB_CONCURRENCY"


def create_served_app() -> FastAPI:
    """The app with settings from the environment, its startup objects kept out of full collections."""
    from serving.app import create_app

    app = create_app()
    gc.collect()
    gc.freeze()
    return app


class TcpListenerConfig(uvicorn.Config):
    """A uvicorn config whose pre-bound listening socket says IPPROTO_TCP, so that asyncio sets
    TCP_NODELAY on every connection it accepts."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
            return sock
        relabelled = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        relabelled.set_inheritable(True)
        return relabelled


def event_loop(requested: str, workers: int) -> str:
    """The event loop to run: `auto` picks by the number of workers (see above)."""
    if requested != "auto":
        return requested
    return "asyncio" if workers == 1 else "uvloop"


class Supervisor(Multiprocess):
    """uvicorn's supervisor, telling the metrics (serving.metrics_dir) about every worker it replaced."""

    def _pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        mark_dead(before - self._pids())

    def handle_signals(self) -> None:
        before = self._pids()
        super().handle_signals()  # SIGHUP replaces every worker, SIGTTOU retires one
        mark_dead(before - self._pids())


def run(*, host: str, port: int, workers: int, loop: str = "auto") -> None:
    """Serve until SIGINT/SIGTERM; with several workers, under uvicorn's process supervisor."""
    settings = load_settings()
    with metrics_directory(settings.metrics_enabled):
        _run(settings, host=host, port=port, workers=workers, loop=loop)


def _run(settings: Settings, *, host: str, port: int, workers: int, loop: str) -> None:
    os.environ[WORKERS_ENV] = str(workers)  # inherited by the workers
    config = TcpListenerConfig(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=event_loop(loop, workers),
        http=PROTOCOL,
        proxy_headers=False,
        timeout_worker_healthcheck=settings.serving_worker_healthcheck_seconds,
        log_config=None,
        access_log=False,
    )
    if workers > 1:
        Supervisor(config, sockets=[config.bind_socket()]).run()
    else:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
