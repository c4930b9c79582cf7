"""`tvdb-images demo` as a new user runs it, on a small slice of its catalog: the embedded dagster.yaml
in its DAGSTER_HOME, progress while it syncs, a second run that downloads nothing even when the
default origin port is taken, no temporary directories left, and printed commands that work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster._core.run_coordinator import QueuedRunCoordinator

from tvdb_images.config import ConfigError, load_settings
from tvdb_images.demo import home as home_module
from tvdb_images.demo import origin as origin_module
from tvdb_images.demo import run as run_module
from tvdb_images.demo.catalog import DemoCatalog, write_demo_catalog
from tvdb_images.demo.home import EMBEDDED_INSTANCE_YAML, prepare_dagster_home
from tvdb_images.ui import dagster_dev_argv
from tvdb_images_tests.support.processes import ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def _small_catalog(path: Path, origin: str) -> DemoCatalog:
    """The demo catalog's first two series (seven artworks) and its one 404 source."""
    write_demo_catalog(path, origin)
    lines = path.read_text(encoding="utf-8").splitlines()
    keep = [*lines[:2], next(line for line in lines if "no-such-image" in line)]
    path.write_text("\n".join(keep) + "\n", encoding="utf-8")
    artworks = sum(line.count('"url"') for line in keep)
    return DemoCatalog(path=path, items=len(keep), artworks=artworks, bad_artworks=1)


@pytest.fixture
def blocked_port() -> Iterator[int]:
    """A loopback port something else listens on, like the 8765 a new user's machine may have taken."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield int(blocker.getsockname()[1])


@pytest.fixture
def demo_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocked_port: int) -> Path:
    for name in list(os.environ):
        if name.startswith(("S3_", "DATABASE_", "DAGSTER_", "STORAGE_", "LOCAL_STORAGE")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", "")  # blank is unset; restored after the demo sets it
    monkeypatch.setenv("TVDB_IMAGES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(run_module, "find_corpus", lambda: None)  # own artwork, temporary origin
    monkeypatch.setattr(origin_module, "DEFAULT_ORIGIN_PORT", blocked_port)
    return tmp_path


def test_second_demo_downloads_nothing_and_the_instance_is_the_embedded_one(
    demo_environment: Path, blocked_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    said: list[str] = []
    first = run_module.run_demo(say=said.append, write_catalog=_small_catalog)
    progress_lines = capsys.readouterr().out.splitlines()
    assert first.ok
    assert first.synced.downloads == 8 and first.origin_requests >= 8
    assert (first.synced.processed, first.synced.failed) == (7, 1)
    assert (first.refused, first.infrastructure_failures, first.pending) == (1, 0, 0)
    # Not a terminal: one plain line per run, with artworks done, failures and throughput.
    runs = len(first.runs) - 1  # the last run refreshes storage_stats
    assert [line.split(":")[0].strip() for line in progress_lines] == [
        f"run {n}/{runs} succeeded" for n in range(1, runs + 1)
    ]
    assert progress_lines[-1].endswith("artworks/s") and "8/8 artworks done, 1 failed" in progress_lines[-1]
    origin_url = next(line for line in said if line.startswith("artwork origin:")).split()[2]
    assert not origin_url.endswith(f":{blocked_port}")
    assert os.listdir(tempfile.gettempdir()) == []  # the temporary origin directory is gone

    # The default port is still taken; the demo keeps the port its catalog was written with.
    said.clear()
    second = run_module.run_demo(say=said.append, write_catalog=_small_catalog)
    assert second.ok and len(second.runs) == 1
    assert (second.synced.downloads, second.origin_requests, second.synced.processed) == (0, 0, 0)
    assert f"artwork origin: {origin_url} " in "\n".join(said) + " "
    assert "0 downloads (0 requests to the origin)" in run_module.format_summary(second)
    assert os.listdir(tempfile.gettempdir()) == []

    home = Path(first.dagster_home)
    assert home == demo_environment / "data" / "dagster_home"
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs_count() == len(first.runs) + len(second.runs)
        _assert_embedded_instance(instance)

    # The printed command, pasted into a shell: `dagster dev` shows the demo's runs, and no dialog.
    port = free_port()
    ui = ManagedProcess(
        "dagster-dev", ["bash", "-c", f"{second.ui_command} -p {port}"], log_dir=demo_environment / "logs"
    ).start()
    try:
        ui.wait_http(f"http://127.0.0.1:{port}/server_info", timeout=300)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ shouldShowNux runsOrError { ... on Runs { results { runId } } } }"},
            timeout=60,
        ).json()["data"]
    finally:
        ui.stop()
    assert answer["shouldShowNux"] is False
    shown = {run["runId"] for run in answer["runsOrError"]["results"]}
    assert shown == {run_id for run_id, _ in first.runs + second.runs}


def _assert_embedded_instance(instance: dg.DagsterInstance) -> None:
    """The repository's dagster.yaml: queued runs within limits, op pools, run retries, no pop-ups."""
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.max_concurrent_runs == 4
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in queue.tag_concurrency_limits}
    assert limits == {("tvdb_images/source_host", "tvdb"): 2, ("dagster/backfill", None): 3}
    assert instance.global_op_concurrency_default_limit == 2
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.nux_enabled is False and instance.telemetry_enabled is False


def test_the_printed_dagster_command_names_the_location_the_workspace_names(
    demo_environment: Path,
) -> None:
    """The UI command's pieces, pasted: the workspace's `tvdb_images` location launches a job into the
    demo's instance (queued, as the embedded dagster.yaml says; `dagster dev`'s daemon would start it)."""
    settings = load_settings()
    home = prepare_dagster_home(settings, say=lambda _line: None)
    command = home_module.dagster_ui_command(settings, home)
    assert command == (
        f"cd {REPO_ROOT} && DAGSTER_HOME={home} TVDB_IMAGES_DATA_DIR={settings.data_dir.resolve()} "
        f"{home_module.program('tvdb-images')} ui"
    )
    # `tvdb-images ui` runs `dagster dev` on the same workspace, by paths that need no activated venv.
    dagster = home_module.program("dagster")
    assert dagster_dev_argv(settings, host="127.0.0.1", port=3000)[:4] == [
        dagster,
        "dev",
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
    ]
    for script in (dagster, home_module.program("tvdb-images")):
        assert Path(script).is_absolute() and Path(script).exists()
    launched = subprocess.run(
        [
            dagster,
            "job",
            "launch",
            "-w",
            "workspace.yaml",
            "-l",
            "tvdb_images",
            "-j",
            "refresh_storage_stats",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "refresh_storage_stats" and run.status == dg.DagsterRunStatus.QUEUED


def test_one_code_location_name_everywhere() -> None:
    import tomllib

    import yaml

    from serving.dagster_client import DEFAULT_LOCATION_NAME

    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    names = {
        entry["python_module"]["location_name"],
        pyproject["code_location_name"],
        DEFAULT_LOCATION_NAME,
        home_module.CODE_LOCATION_NAME,
    }
    assert names == {"tvdb_images"}
    assert entry["python_module"]["module_name"] == pyproject["module_name"] == "tvdb_images.definitions"
    assert "dagster dev -m" not in (REPO_ROOT / "README.md").read_text()


def test_the_package_ships_the_embedded_dagster_yaml() -> None:
    assert EMBEDDED_INSTANCE_YAML.read_text() == (REPO_ROOT / "dagster.yaml").read_text()


def test_a_missing_dagster_home_is_created_with_the_embedded_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "not" / "yet"
    monkeypatch.setenv("DAGSTER_HOME", str(target))
    said: list[str] = []
    assert prepare_dagster_home(load_settings(), say=said.append) == target
    assert said == [f"created DAGSTER_HOME {target} with the embedded dagster.yaml"]
    assert (target / "dagster.yaml").read_text() == EMBEDDED_INSTANCE_YAML.read_text()
    with dg.DagsterInstance.from_config(str(target)) as instance:
        _assert_embedded_instance(instance)


def test_an_operators_dagster_yaml_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    prepare_dagster_home(load_settings(), say=lambda _line: None)
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_a_dagster_home_that_cannot_be_created_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file" / "home"))  # even root cannot create it
    with pytest.raises(ConfigError, match="does not exist and cannot be created") as refused:
        prepare_dagster_home(load_settings(), say=lambda _line: None)
    assert "\n" not in str(refused.value)


def test_origin_keeps_the_recorded_port_and_says_when_it_must_move(tmp_path: Path, blocked_port: int) -> None:
    (tmp_path / origin_module.PORT_FILE).write_text(f"{blocked_port}\n")
    said: list[str] = []
    with origin_module.serve_origin(tmp_path, tmp_path, say=said.append) as origin:
        assert origin.port != blocked_port
    assert said and f"port {blocked_port}" in said[0] and "downloaded again" in said[0]
    assert origin_module.recorded_port(tmp_path) == origin.port
    with origin_module.serve_origin(tmp_path, tmp_path, say=said.append) as again:
        assert again.port == origin.port
    taken = origin_module.serve_origin(tmp_path, tmp_path, requested_port=blocked_port)
    with pytest.raises(ConfigError, match=f"--origin-port {blocked_port}: cannot listen"), taken:
        pass


def test_progress_on_a_terminal_is_a_live_display(sqlite_catalog, tmp_path: Path) -> None:
    """On a TTY the rich display shows runs, artworks done of those to do, failures and throughput."""
    import pty
    from datetime import UTC, datetime

    from tvdb_images.catalog import results
    from tvdb_images.catalog.importer import import_catalog_lines
    from tvdb_images.demo.progress import SyncProgress, artworks_to_sync

    lines = [
        json.dumps(
            {
                "content_type": "series",
                "id": n,
                "artworks": [{"id": n, "type": "poster", "url": f"https://artworks.thetvdb.com/{n}.jpg"}],
            }
        )
        for n in (1, 2)
    ]
    import_catalog_lines(sqlite_catalog, lines)
    assert artworks_to_sync(sqlite_catalog, max_attempts=5) == 2
    primary, secondary = pty.openpty()
    since = datetime.now(UTC)
    with open(secondary, "w", encoding="utf-8", closefd=True) as terminal:
        progress = SyncProgress(
            sqlite_catalog, since=since, runs=2, artworks=2, stream=terminal, interval=0.05
        )
        assert progress.interactive
        with progress:
            with sqlite_catalog.session() as session:
                results.record_failure(session, 1, cause="timeout", detail="read timed out", retryable=True)
            progress.run_finished(True)
            progress.run_finished(False)
        assert progress.counts.failed == 1 and progress.counts.downloads == 1
    shown = os.read(primary, 65536).decode("utf-8", "replace")
    os.close(primary)
    assert "Dagster runs" in shown and "artworks" in shown
    assert "2/2" in shown and "1/2" in shown and "1 failed" in shown and "/s" in shown
