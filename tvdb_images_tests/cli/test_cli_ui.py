"""`tvdb-images ui`, the command the README and the demo give for the Dagster UI, as a new user runs it:
a fresh HOME, a DAGSTER_HOME that does not exist yet (created with the embedded dagster.yaml, then
`dagster dev` loads it) or cannot exist (one line, exit code 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tvdb_images.demo.home import EMBEDDED_INSTANCE_YAML
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.waiting import wait_until

TVDB_IMAGES = str(Path(sys.executable).parent / "tvdb-images")


def _new_user(tmp_path: Path, **env: str) -> dict[str, str]:
    """This environment less the program's settings, with a HOME of its own (no ~/.aws, no caches)."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("S3_", "AWS_", "DATABASE_", "DAGSTER_", "STORAGE_", "TVDB_IMAGES_"))
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    return {**kept, "HOME": str(tmp_path / "home"), "DAGSTER_DISABLE_TELEMETRY": "1", **env}


def _wait_for_line(process: ManagedProcess, text: str, timeout: float = 180) -> None:
    def logged() -> bool:
        if text in process.log_tail(200_000):
            return True
        assert process.alive(), process.log_tail()
        return False

    wait_until(logged, timeout, interval=0.2, message=lambda: f"no {text!r}:\n{process.log_tail()}")


def test_ui_creates_a_missing_dagster_home_and_dagster_dev_accepts_it(tmp_path: Path) -> None:
    """Up to `dagster dev` having loaded the instance (where plain `dagster dev` stops with a stack
    trace on a missing DAGSTER_HOME); the demo test opens the UI itself through the same command."""
    home = tmp_path / "not" / "yet" / "dagster_home"
    ui = ManagedProcess(
        "tvdb-images-ui",
        [TVDB_IMAGES, "ui", "--port", str(free_port())],
        env=_new_user(tmp_path, DAGSTER_HOME=str(home), TVDB_IMAGES_DATA_DIR=str(tmp_path / "data")),
        cwd=tmp_path,  # not the checkout: the workspace is found by its path
        log_dir=tmp_path / "logs",
    ).start()
    try:
        _wait_for_line(ui, "Launching Dagster services")  # printed once Dagster loaded the instance
        # Read before stopping: Ctrl-C may interrupt a child mid-import on a busy machine, and what it
        # prints on the way out is not what a user meets on the way in.
        log = ui.log_tail(200_000)
    finally:
        ui.stop()
    assert log.startswith(f"created DAGSTER_HOME {home} with the embedded dagster.yaml\n"), log
    assert "Traceback" not in log
    assert (home / "dagster.yaml").read_text() == EMBEDDED_INSTANCE_YAML.read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.nux_enabled is False and instance.run_retries_enabled


def test_ui_refuses_a_dagster_home_that_cannot_exist_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for home, reason in [
        (tmp_path / "a-file" / "home", "does not exist and cannot be created"),  # even root cannot
        (tmp_path / "a-file", "is a file, not a directory"),
    ]:
        done = subprocess.run(
            [TVDB_IMAGES, "ui", "--port", str(free_port())],
            cwd=tmp_path,
            env=_new_user(tmp_path, DAGSTER_HOME=str(home), TVDB_IMAGES_DATA_DIR=str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines == [lines[0]] and lines[0].startswith(f"tvdb-images: DAGSTER_HOME: {home} {reason}")
        assert "Traceback" not in done.stdout + done.stderr
