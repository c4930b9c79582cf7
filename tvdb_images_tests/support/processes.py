"""Start the project's own server processes for tests (dagster-webserver, code server, daemon, serving
API) and stop exactly those, by the process ids started here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from tvdb_images_tests.support.services import port_open
from tvdb_images_tests.support.waiting import wait_until


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    """One child process in its own session, its output in a log file, stopped by its pid."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_dir: Path,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env or os.environ)
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def wait_http(self, url: str, *, timeout: float = 90, ok: Sequence[int] = (200,)) -> None:
        """Wait until `url` answers with one of `ok`, failing early with the log if the process died."""

        def answers() -> bool:
            self._check_alive()
            return httpx.get(url, timeout=2).status_code in ok

        wait_until(
            answers,
            timeout,
            0.3,
            lambda: f"{self.name} did not answer {url}:\n{self.log_tail()}",
            ignore=(httpx.HTTPError,),
        )

    def wait_port(self, port: int, *, timeout: float = 90) -> None:

        def listens() -> bool:
            self._check_alive()
            return port_open("127.0.0.1", port)

        wait_until(listens, timeout, 0.3, lambda: f"{self.name} did not listen on {port}:\n{self.log_tail()}")

    def _check_alive(self) -> None:
        """Fail a wait at once, with the log, when the process has died."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group this object started, then SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL at once (fault injection)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def worker_pids(supervisor: int) -> list[int]:
    """The spawned worker processes of `tvdb-images serve --workers N` (not multiprocessing's
    resource tracker)."""
    pids = []
    for children in Path(f"/proc/{supervisor}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                continue
    return pids


def start_api_server(
    name: str,
    env: Mapping[str, str],
    *,
    log_dir: Path,
    cwd: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
    port: int | None = None,
) -> tuple[ManagedProcess, int]:
    """`tvdb-images serve` on a free loopback port (or `port`, when its URL must be known beforehand,
    e.g. for PUBLIC_BASE_URL), as an operator starts it; returns with its port once `/healthz`
    answers, and stops it if it never does."""
    port = port or free_port()
    argv = [str(Path(sys.executable).with_name("tvdb-images")), "serve", "--host", "127.0.0.1"]
    process = ManagedProcess(
        name, [*argv, "--port", str(port), *extra_args], env=env, cwd=cwd, log_dir=log_dir
    ).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=timeout)
    except BaseException:
        process.stop()
        raise
    return process, port
