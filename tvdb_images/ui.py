"""`tvdb-images ui`: `dagster dev` on this package's workspace, started only once its instance is usable.

Dagster's CLI loads the instance before any of our code runs, and stops with a stack trace when
DAGSTER_HOME names a directory that does not exist. This command first makes DAGSTER_HOME usable the
way the demo does (created with the embedded dagster.yaml, or refused in one line), checks the
settings the code location will read, then replaces itself with `dagster dev`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tvdb_images.config import ConfigError, Settings
from tvdb_images.demo.home import prepare_dagster_home, program, workspace_file


def dagster_dev_argv(settings: Settings, *, host: str, port: int) -> list[str]:
    """The `dagster dev` command line: the workspace by absolute path, so any working directory works."""
    return [
        program("dagster"),
        "dev",
        "-w",
        str(workspace_file(settings)),
        "--host",
        host,
        "--port",
        str(port),
    ]


def open_ui(settings: Settings, *, host: str, port: int, say=print) -> None:
    """Prepare DAGSTER_HOME and the environment the webserver, daemon and runs inherit, then exec
    `dagster dev`. Returns only by raising ConfigError."""
    home = prepare_dagster_home(settings, say=say)
    from tvdb_images.preflight import check_dependencies

    check_dependencies(settings, reach_storage=False)  # bad settings: one line here, not in the UI
    # Every process `dagster dev` starts reads the same data directory, whatever its working directory.
    os.environ["TVDB_IMAGES_DATA_DIR"] = str(settings.data_dir.resolve())
    argv = dagster_dev_argv(settings, host=host, port=port)
    say(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        where = Path(argv[0])
        raise ConfigError(
            f"cannot start {where.name} ({exc.strerror}): install the package with its dependencies "
            "(pip install -e .) into the environment tvdb-images runs from"
        ) from None
