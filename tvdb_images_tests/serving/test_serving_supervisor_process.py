"""`tvdb-images serve --workers 2` stops on SIGTERM at once, also after it replaced a killed worker
(a replacement that is still importing the app used to hold the supervisor for the whole healthcheck
timeout, so `docker stop` waited for its SIGKILL)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tvdb_images_tests.support.processes import start_api_server, worker_pids
from tvdb_images_tests.support.serving_data import ServedData
from tvdb_images_tests.support.waiting import wait_until

STOPPED_WITHIN = 15.0  # seconds: the workers' shutdown (lifespan, flushes) on a loaded machine


@pytest.mark.parametrize("target", ["supervisor", "process group"])
def test_sigterm_stops_the_supervisor_after_a_worker_was_replaced(
    embedded_data: ServedData, tmp_path: Path, target: str
) -> None:
    env = {**os.environ, **embedded_data.env, "PYTHONUNBUFFERED": "1"}  # the default 120 s healthcheck
    server, port = start_api_server(
        "serve-sigterm", env, cwd=tmp_path, log_dir=tmp_path, extra_args=["--workers", "2"], timeout=240
    )
    try:
        server.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=240)
        wait_until(lambda: len(worker_pids(server.pid)) == 2, 120, message="two workers")
        victim = worker_pids(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in worker_pids(server.pid), 60, message="the killed worker replaced")
        wait_until(lambda: len(worker_pids(server.pid)) == 2, 60, message="the replacement started")

        started = time.monotonic()
        if target == "supervisor":  # as `docker stop` does: PID 1 only
            os.kill(server.pid, signal.SIGTERM)
        else:
            os.killpg(server.pid, signal.SIGTERM)
        assert server.process is not None
        code = server.process.wait(timeout=120)
        took = time.monotonic() - started
    finally:
        server.kill()
    assert code == 0, server.log_tail()
    assert took < STOPPED_WITHIN, f"stopped after {took:.1f} s\n{server.log_tail()}"
