"""The demo's Dagster instance: a DAGSTER_HOME holding the repository's embedded `dagster.yaml` (run
queue, tag and pool limits, run retries, no telemetry or community dialog), and the command that
opens the Dagster UI on it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from tvdb_images.config import ConfigError, Settings

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The top-level dagster.yaml, shipped in the package (tvdb_images/deployment/dagster.yaml links to it).
EMBEDDED_INSTANCE_YAML = PACKAGE_DIR / "deployment" / "dagster.yaml"
# The workspace file of a source checkout; it names the code location `tvdb_images`.
CHECKOUT_WORKSPACE_YAML = PACKAGE_DIR.parent / "workspace.yaml"
CODE_LOCATION_NAME = "tvdb_images"
_GENERATED_WORKSPACE = f"""\
# Written by `tvdb-images demo`: the code location of the installed tvdb_images package.
load_from:
  - python_module:
      module_name: tvdb_images.definitions
      location_name: {CODE_LOCATION_NAME}
"""


def prepare_dagster_home(settings: Settings, say=print) -> Path:
    """DAGSTER_HOME if set (created if missing; given the embedded dagster.yaml if it has none), else
    `dagster_home/` in the data directory, whose dagster.yaml the demo keeps equal to the embedded one.
    Sets DAGSTER_HOME for this process; a DAGSTER_HOME that cannot be used is a ConfigError."""
    embedded = EMBEDDED_INSTANCE_YAML.read_text(encoding="utf-8")
    configured = os.environ.get("DAGSTER_HOME", "").strip()
    if configured:
        home = Path(configured).expanduser()
        if home.exists() and not home.is_dir():
            raise ConfigError(
                f"DAGSTER_HOME: {configured} is a file, not a directory: point it at a directory"
            )
        if not home.exists():
            try:
                home.mkdir(parents=True)
            except OSError as exc:
                raise ConfigError(
                    f"DAGSTER_HOME: {configured} does not exist and cannot be created ({exc.strerror}): "
                    "create it, or point DAGSTER_HOME at a directory you can write"
                ) from None
            (home / "dagster.yaml").write_text(embedded, encoding="utf-8")
            say(f"created DAGSTER_HOME {home.resolve()} with the embedded dagster.yaml")
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text(embedded, encoding="utf-8")
            say(f"DAGSTER_HOME had no dagster.yaml: wrote the embedded default's to {config.resolve()}")
    else:
        home = settings.data_dir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists() or config.read_text(encoding="utf-8") != embedded:
            config.write_text(embedded, encoding="utf-8")
    home = home.resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def workspace_file(settings: Settings) -> Path:
    """The checkout's workspace.yaml; for an installed package, one written to the data directory."""
    if CHECKOUT_WORKSPACE_YAML.is_file():
        return CHECKOUT_WORKSPACE_YAML
    generated = settings.data_dir.resolve() / "workspace.yaml"
    if not generated.exists() or generated.read_text(encoding="utf-8") != _GENERATED_WORKSPACE:
        generated.write_text(_GENERATED_WORKSPACE, encoding="utf-8")
    return generated


def program(name: str) -> str:
    """The path of a console script of this Python environment (its venv), so a printed command works
    pasted into a shell where the venv is not activated."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def dagster_ui_command(settings: Settings, home: Path) -> str:
    """The shell command that opens the Dagster UI on the demo's instance and data: `tvdb-images ui`,
    which prepares DAGSTER_HOME before it starts `dagster dev` on the workspace."""
    workspace = workspace_file(settings)
    return " ".join(
        [
            "cd",
            shlex.quote(str(workspace.parent)),
            "&&",
            f"DAGSTER_HOME={shlex.quote(str(home))}",
            f"TVDB_IMAGES_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}",
            shlex.quote(program("tvdb-images")),
            "ui",
        ]
    )


def serve_command(settings: Settings) -> str:
    """The shell command that serves the demo's images with the serving API."""
    return (
        f"TVDB_IMAGES_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))} "
        f"{shlex.quote(program('tvdb-images'))} serve"
    )
