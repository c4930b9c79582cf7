"""A real Dagster deployment for UI tests: `dagster-webserver` and `dagster-daemon` on the repository's
`workspace.yaml` and `dagster.yaml`, a temporary DAGSTER_HOME, a small SQLite catalog and local storage,
started on free loopback ports and stopped by the pids started here."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from tvdb_images_tests.support.dagster_api import DagsterAPI
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.waiting import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
EMBEDDED_INSTANCE = REPOSITORY / "dagster.yaml"
WORKSPACE = REPOSITORY / "workspace.yaml"

DAEMON_HEALTH = """
query { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""


@dataclass
class DagsterDeployment:
    url: str
    dagster_home: Path
    webserver: ManagedProcess
    daemon: ManagedProcess

    @property
    def api(self) -> DagsterAPI:
        return DagsterAPI(f"{self.url}/graphql", timeout=120)

    def instance(self) -> dg.DagsterInstance:
        """The same instance the webserver and the daemon use (SQLite files under DAGSTER_HOME)."""
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def logs(self) -> str:
        return f"--- webserver\n{self.webserver.log_tail()}\n--- daemon\n{self.daemon.log_tail()}"


def instance_config(**overrides: object) -> dict[str, object]:
    """The repository's dagster.yaml (the embedded default), without the first-visit dialog."""
    config = yaml.safe_load(EMBEDDED_INSTANCE.read_text())
    config.setdefault("nux", {"enabled": False})
    config.update(overrides)
    return config


def _wait_daemons_healthy(api: DagsterAPI, daemon: ManagedProcess, timeout: float) -> None:
    statuses: list[dict[str, object]] = []
    wanted = {"BACKFILL", "QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR"}

    def healthy() -> bool:
        if not daemon.alive():
            raise RuntimeError(f"dagster-daemon exited:\n{daemon.log_tail()}")
        statuses[:] = api.query(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return wanted <= {s["daemonType"] for s in statuses if s["healthy"]}

    wait_until(healthy, timeout, 1, lambda: f"daemons not healthy: {statuses}\n{daemon.log_tail()}")


@contextmanager
def dagster_deployment(
    tmp_path: Path,
    env: Mapping[str, str],
    *,
    instance: Mapping[str, object] | None = None,
    daemon_command: Sequence[str] | None = None,
) -> Iterator[DagsterDeployment]:
    """Start the webserver and the daemon with `env` (the program's settings) and a fresh DAGSTER_HOME.

    `daemon_command` replaces `dagster-daemon run` (e.g. by the deployment's, without its `-w`)."""
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = dict(instance or instance_config())
    storage = config.get("storage", {}).get("custom")
    if storage and "postgres_url" not in storage.get("config", {}):
        # SQLite files named explicitly, so this process opens the same storage without DAGSTER_HOME
        storage["config"] = {"base_dir": str(home), **storage.get("config", {})}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    full_env = {**env, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}
    bin_dir = Path(sys.executable).parent
    port = free_port()
    logs = tmp_path / "logs"
    webserver = ManagedProcess(
        "webserver",
        [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKSPACE)],
        env=full_env,
        cwd=REPOSITORY,
        log_dir=logs,
    )
    daemon = ManagedProcess(
        "daemon",
        [*(daemon_command or [str(bin_dir / "dagster-daemon"), "run"]), "-w", str(WORKSPACE)],
        env=full_env,
        cwd=REPOSITORY,
        log_dir=logs,
    )
    deployment = DagsterDeployment(f"http://127.0.0.1:{port}", home, webserver, daemon)
    try:
        webserver.start()
        daemon.start()
        webserver.wait_http(f"{deployment.url}/server_info", timeout=180)
        _wait_daemons_healthy(deployment.api, daemon, timeout=180)
        yield deployment
    finally:
        daemon.stop()
        webserver.stop()
