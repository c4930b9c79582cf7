"""The command line as a user meets it: help for command groups, choices checked, counts in English,
and bad configuration stopped at start with one clear message and exit code 2 (real PostgreSQL for
the missing database, a closed loopback port for the unreachable S3 server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tvdb_images.cli import main
from tvdb_images.pipeline.causes import FAILURE_CAUSES
from tvdb_images_tests.support import services

CLI = [sys.executable, "-m", "tvdb_images.cli"]


_ISOLATED = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _environment(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("S3_", "AWS_", "DATABASE_", "DAGSTER_", "STORAGE_"))
    }
    return {**clean, **_ISOLATED, "TVDB_IMAGES_DATA_DIR": str(tmp_path / "data"), **env}


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`tvdb-images ARGS` in a fresh process, in an empty directory (no .env), with only `env` set."""
    return subprocess.run(
        CLI + args,
        cwd=tmp_path,
        env=_environment(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`main(ARGS)` in this process, in an empty directory, with only the given variables set."""

    def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        for name in list(os.environ):
            if name.startswith(("S3_", "AWS_", "DATABASE_", "DAGSTER_", "STORAGE_")):
                monkeypatch.delenv(name)
        for name, value in {**_ISOLATED, "TVDB_IMAGES_DATA_DIR": str(tmp_path / "data"), **env}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        code = main(args)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("group", ["catalog", "db"])
def test_a_command_group_without_subcommand_prints_its_own_help(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([group]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tvdb-images {group} ")
    assert ("retry-failed" in out) if group == "catalog" else ("upgrade" in out)


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--content-type", "show", "'episodes', 'movies', 'people', 'seasons', 'series'"),
        ("--cause", "nope", "'timeout'"),
    ],
)
def test_retry_failed_rejects_unknown_values_with_the_allowed_list(
    option: str, value: str, allowed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["catalog", "retry-failed", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: invalid choice: '{value}'" in err and allowed in err


def test_failure_causes_cover_what_the_pipeline_records() -> None:
    assert {"timeout", "storage_error", "source_missing", "truncated", "gone"} <= set(FAILURE_CAUSES)


def test_retry_failed_counts_in_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tvdb_images.catalog import results
    from tvdb_images.catalog.db import Catalog

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    catalog_file = tmp_path / "catalog.jsonl"
    catalog_file.write_text(
        '{"content_type": "series", "id": 1, "artworks": [{"id": 7, "type": "poster", "url": "https://artworks.thetvdb.com/a.jpg"}]}\n'
    )
    assert main(["catalog", "import", str(catalog_file)]) == 0
    assert "imported 1 item, 1 artwork (1 new" in capsys.readouterr().out
    catalog = Catalog(f"sqlite:///{tmp_path / 'cli.db'}")
    with catalog.session() as session:
        results.record_failure(session, 7, cause="timeout", detail="read timed out", retryable=True)
    catalog.dispose()
    assert main(["catalog", "retry-failed", "--cause", "timeout"]) == 0
    assert capsys.readouterr().out.strip() == "1 artwork will be tried again by the next sync"
    assert main(["catalog", "retry-failed"]) == 0
    assert capsys.readouterr().out.strip() == "0 artworks will be tried again by the next sync"


def _assert_stopped_at_start(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_s3_without_credentials_stops_the_demo_at_start(tmp_path: Path) -> None:
    result = _run(["demo"], tmp_path, STORAGE_BACKEND="s3")
    _assert_stopped_at_start(result, "STORAGE_BACKEND=s3", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
    assert "None" not in result.stderr
    # Nothing ran: no Dagster instance, no runs.
    assert not (tmp_path / "data" / "dagster_home").exists()


@pytest.mark.parametrize("command", [["serve"], ["catalog", "import", "x.jsonl"]])
def test_s3_without_credentials_stops_other_commands(command: list[str], cli, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("")
    result = cli(command, STORAGE_BACKEND="s3")
    if command[0] == "serve":
        _assert_stopped_at_start(result, "STORAGE_BACKEND=s3", "S3_ACCESS_KEY_ID")
    else:  # importing needs only the catalog database
        assert result.returncode == 0, result.stderr


def test_s3_with_half_the_credentials_names_the_missing_one(cli) -> None:
    result = cli(["serve"], STORAGE_BACKEND="s3", S3_ACCESS_KEY_ID="key")
    _assert_stopped_at_start(result, "S3_SECRET_ACCESS_KEY: not set")


def _unreachable_s3() -> dict[str, str]:
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "S3_ACCESS_KEY_ID": "key",
        "S3_SECRET_ACCESS_KEY": "secret",
    }


def test_unreachable_s3_endpoint_stops_the_demo_at_start(tmp_path: Path) -> None:
    env = _unreachable_s3()
    result = _run(["demo"], tmp_path, **env)
    _assert_stopped_at_start(
        result,
        f"S3_ENDPOINT_URL: cannot reach the S3 server at {env['S3_ENDPOINT_URL']}",
        "start the S3 server",
    )
    assert not (tmp_path / "data" / "dagster_home").exists()


def test_s3_preflight_passes_on_real_seaweedfs(seaweedfs: services.SeaweedFS) -> None:
    """The same check against a real S3 server: reachable, credentials accepted, buckets may be missing."""
    from tvdb_images.config import load_settings
    from tvdb_images.preflight import check_dependencies

    settings = load_settings(
        **seaweedfs.storage_values(
            services.unique_name("orig").replace("_", "-"), services.unique_name("thumb").replace("_", "-")
        ),
        DATABASE_URL="sqlite://",
    )
    check_dependencies(settings)


@pytest.mark.services
def test_a_database_that_does_not_exist_stops_the_demo_at_start(tmp_path: Path) -> None:
    name = services.unique_name("tvdb_missing")
    result = _run(["demo"], tmp_path, DATABASE_URL=services.database_url(name))
    _assert_stopped_at_start(result, f'DATABASE_URL: database "{name}" does not exist', "createdb")
    assert not (tmp_path / "data" / "dagster_home").exists()


@pytest.mark.services
@pytest.mark.parametrize(
    "command", [["serve"], ["db", "upgrade"], ["catalog", "retry-failed"], ["catalog", "import", "x.jsonl"]]
)
def test_a_database_that_does_not_exist_stops_other_commands(command: list[str], cli, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("")
    name = services.unique_name("tvdb_missing")
    result = cli(command, DATABASE_URL=services.database_url(name))
    _assert_stopped_at_start(result, f'DATABASE_URL: database "{name}" does not exist', "createdb", name)


def test_an_unreachable_database_server_stops_at_start(cli) -> None:
    port = _closed_port()
    result = cli(["db", "upgrade"], DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/tvdb")
    _assert_stopped_at_start(
        result, f"cannot connect to the catalog database at 127.0.0.1:{port}", "start the database server"
    )


def test_a_dagster_home_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "home-file"
    not_a_directory.write_text("")
    result = _run(["demo"], tmp_path, DAGSTER_HOME=str(not_a_directory))
    _assert_stopped_at_start(result, f"DAGSTER_HOME: {not_a_directory} is a file, not a directory")


def test_s3_without_credentials_stops_the_code_location_load(tmp_path: Path) -> None:
    """`dagster` loading the workspace's code location reports the setting, not a run's stack trace."""
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "home").mkdir()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            str(repo / "workspace.yaml"),
        ],
        cwd=tmp_path,
        env=_environment(tmp_path, {"STORAGE_BACKEND": "s3", "DAGSTER_HOME": str(tmp_path / "home")}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "ConfigError: STORAGE_BACKEND=s3 but no S3 credentials are set" in result.stdout + result.stderr
