"""docker-compose.yml, .env.example, the Dockerfile and dagster/*.yaml, checked as parsed files.

There is no Docker engine here, so nothing is built or started (test_stack_native.py starts the same
commands natively); these tests hold the files to each other and to the code: the services and their
start-up order, healthchecks, volumes, every setting documented and passed on to the run containers,
defaults equal to the program's own, and the commands the native test runs equal to the compose ones
but for addresses. When a compose CLI is installed, its own `config` output must match our reading.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from pydantic import SecretStr

from tvdb_images.config import Settings
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN
from tvdb_images_tests.support.stack import (
    CONTAINER_PORTS,
    DOCKERFILE,
    ENV_EXAMPLE,
    NATIVE_SERVICES,
    PRODUCTION_INSTANCE,
    PRODUCTION_WORKSPACE,
    REPO_ROOT,
    STAND_INS,
    STORAGE_COMPOSE_FILE,
    InterpolationError,
    NativeAddresses,
    address_references,
    compose_services,
    instance_for_native_run,
    interpolate,
    load_compose,
    native_commands,
    read_env_file,
)

pytestmark = pytest.mark.stack

SETTINGS_ALIASES = {field.alias for field in Settings.model_fields.values() if field.alias}
# Settings the stack pins to its own services, not to the program's embedded defaults.
PINNED_BY_COMPOSE = {"DATABASE_URL", "STORAGE_BACKEND", "S3_ENDPOINT_URL", "DAGSTER_GRAPHQL_URL"}
# Settings of the embedded setup only: the stack keeps nothing on a local disk.
EMBEDDED_ONLY = {
    "TVDB_IMAGES_DATA_DIR",
    "LOCAL_STORAGE_DIR",
    "LOCAL_STORAGE_FILE_MODE",
    "LOCAL_STORAGE_DIR_MODE",
}
ONE_SHOTS = {"postgres-init", "create-buckets", "migrate"}
MONITORING = {"pushgateway", "prometheus", "grafana"}
LONG_RUNNING = {"postgres", "minio", "code-server", "webserver", "daemon", "api", *MONITORING}
# Everything that loads the Dagster instance (dagster.yaml): it reads these variables.
INSTANCE_USERS = {"migrate", "code-server", "webserver", "daemon"}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(example: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yml as `cp .env.example .env && docker compose config` would resolve it."""
    return load_compose(example)


@pytest.fixture(scope="module")
def instance() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_INSTANCE.read_text())


def test_every_service_is_started_natively_or_has_a_stand_in(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(NATIVE_SERVICES) | set(STAND_INS)
    assert set(NATIVE_SERVICES).isdisjoint(STAND_INS)
    assert set(compose["services"]) == ONE_SHOTS | LONG_RUNNING


def test_start_up_order_is_enforced_by_depends_on_conditions(compose: dict[str, Any]) -> None:
    services = compose_services(compose)
    expected = {
        "postgres": {},
        "minio": {},
        "postgres-init": {"postgres": "service_healthy"},
        "create-buckets": {"minio": "service_healthy"},
        "migrate": {
            "postgres": "service_healthy",
            "postgres-init": "service_completed_successfully",
            "create-buckets": "service_completed_successfully",
        },
        "code-server": {"migrate": "service_completed_successfully"},
        "webserver": {"migrate": "service_completed_successfully", "code-server": "service_healthy"},
        "daemon": {"migrate": "service_completed_successfully", "code-server": "service_healthy"},
        "api": {"migrate": "service_completed_successfully"},
        "pushgateway": {},
        "prometheus": {"pushgateway": "service_healthy"},
        "grafana": {"prometheus": "service_healthy"},
    }
    assert {name: service.depends_on for name, service in services.items()} == expected
    for service in services.values():
        for dependency, condition in service.depends_on.items():
            if condition == "service_healthy":
                assert services[dependency].healthcheck, f"{service.name} waits on {dependency}'s health"
            if condition == "service_completed_successfully":
                assert dependency in ONE_SHOTS


def test_long_running_services_have_healthchecks_and_restart(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        if name in ONE_SHOTS:
            assert spec.get("restart") == "no", name
            assert "healthcheck" not in spec, name
            continue
        assert spec.get("restart") == "unless-stopped", name
        check = spec["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name


def test_data_lives_in_named_volumes_and_the_launchers_reach_docker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "minio-data:/data" in services["minio"]["volumes"]
    assert set(compose["volumes"]) == {"postgres-data", "minio-data", "prometheus-data", "grafana-data"}
    # The daemon launches run containers, the webserver terminates them: both need the Docker socket.
    for name in ("daemon", "webserver"):
        assert "/var/run/docker.sock:/var/run/docker.sock" in services[name]["volumes"], name
    assert {name for name, spec in services.items() if spec.get("volumes")} == {
        "postgres",
        "minio",
        "daemon",
        "webserver",
        "prometheus",
        "grafana",
    }


def test_run_containers_join_the_compose_network(compose: dict[str, Any], instance: dict[str, Any]) -> None:
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    network = launcher["config"]["network"]
    assert compose["networks"]["tvdb-images"]["name"] == network
    for name, spec in compose["services"].items():
        assert spec["networks"] == ["tvdb-images"], name
    # The image that runs are launched from is the one the code server reports.
    code_server = compose_services(compose)["code-server"]
    assert code_server.environment["DAGSTER_CURRENT_IMAGE"] == compose["services"]["code-server"]["image"]


def test_run_containers_get_every_setting_the_daemon_has(
    compose: dict[str, Any], instance: dict[str, Any]
) -> None:
    """DockerRunLauncher copies `env_vars` from the daemon's environment; a name missing there fails
    every launch, and a setting not copied would silently fall back to its default in the runs."""
    daemon = compose_services(compose)["daemon"].environment
    forwarded = set(instance["run_launcher"]["config"]["env_vars"])
    assert forwarded == set(daemon) - {"DAGSTER_HOME"}
    # Every setting reaches the runs, but for the serving API's own (set on `api` only).
    serving_only = (SETTINGS_ALIASES & set(compose_services(compose)["api"].environment)) - set(daemon)
    assert serving_only and SETTINGS_ALIASES - EMBEDDED_ONLY - serving_only <= forwarded


def test_every_setting_is_documented_in_env_example(example: dict[str, str]) -> None:
    documented = set(example) | set(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert SETTINGS_ALIASES - documented == set()
    # ...and every variable the compose files read from .env; nothing else, so no stale entries.
    referenced: set[str] = set()
    for path in (REPO_ROOT / "docker-compose.yml", STORAGE_COMPOSE_FILE):
        referenced |= set(_REFERENCE.findall(path.read_text()))
    assert referenced - documented == set()
    assert documented - referenced - SETTINGS_ALIASES == set()


def test_every_setting_reaches_a_service(compose: dict[str, Any]) -> None:
    passed = set().union(*(service.environment for service in compose_services(compose).values()))
    assert SETTINGS_ALIASES - passed == EMBEDDED_ONLY


def test_compose_and_env_example_defaults_are_the_programs_own(example: dict[str, str]) -> None:
    """`${NAME:-default}` of a setting, and its value in .env.example, mean what leaving it unset means."""
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    defaults = dict(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", text))
    checked = 0
    embedded = Settings.model_validate({})
    for alias, default in defaults.items():
        if alias not in SETTINGS_ALIASES or alias in PINNED_BY_COMPOSE:
            continue
        name = _field_name(alias)
        given = Settings.model_validate({alias: default})
        assert _effective(getattr(given, name)) == _effective(getattr(embedded, name)), alias
        if alias in example and alias not in {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "ADMIN_API_TOKEN"}:
            assert example[alias] == default, f"{alias}: .env.example says {example[alias]!r}"
        checked += 1
    assert checked >= 20


def test_compose_refuses_to_start_without_its_secrets(example: dict[str, str]) -> None:
    for secret in ("POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "GRAFANA_ADMIN_PASSWORD"):
        with pytest.raises(InterpolationError, match=secret):
            load_compose({key: value for key, value in example.items() if key != secret})


def test_interpolation_follows_the_compose_rules() -> None:
    values = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d}", values) == "x d d  d"
    assert interpolate("$$HOME ${SET:+alt} ${EMPTY:+alt} $SET", values) == "$HOME alt  x"
    with pytest.raises(InterpolationError, match="need it"):
        interpolate("${EMPTY:?need it}", values)
    assert interpolate("${EMPTY?fine when set}", values) == ""


def test_instance_config_is_valid_for_dagster(
    instance: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in _env_references(instance):
        monkeypatch.setenv(variable, "postgresql+psycopg2://u@h/d" if variable.endswith("_URL") else "value")
    result = process_config(dagster_instance_config_schema(), instance)
    assert result.success, result.errors
    coordinator = instance["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert process_config(QueuedRunCoordinator.config_type(), coordinator["config"]).success
    assert process_config(S3ComputeLogManager.config_type(), instance["compute_logs"]["config"]).success
    # DockerRunLauncher's options (dagster-docker is installed in the image only).
    assert set(instance["run_launcher"]["config"]) <= {
        "image",
        "registry",
        "env_vars",
        "network",
        "networks",
        "container_kwargs",
    }


def test_instance_limits_runs_against_tvdb_and_retries_only_crashes(instance: dict[str, Any]) -> None:
    from tvdb_images.defs.jobs import ALL_JOBS, SOURCE_HOST_TAG

    runs = instance["concurrency"]["runs"]
    limits = runs["tag_concurrency_limits"]
    ((tag, value),) = SOURCE_HOST_TAG.items()
    source_host = [limit for limit in limits if limit["key"] == tag]
    assert source_host == [{"key": tag, "value": value, "limit": 2}]
    backfills = [limit for limit in limits if limit["key"] == "dagster/backfill"]
    assert len(backfills) == 1 and backfills[0]["limit"] < runs["max_concurrent_runs"]
    # The downloading steps share one pool with the same limit, whatever launched their runs.
    assert instance["concurrency"]["pools"] == {"granularity": "op", "default_limit": 2}
    from tvdb_images.defs.assets import SOURCE_HOST_POOL, source_images

    assert source_images.op.pool == SOURCE_HOST_POOL
    # The jobs that download from TVDB carry the tag the limit counts.
    tagged = {job.name for job in ALL_JOBS if job.tags.get(tag) == value}
    assert tagged == {"sync_images", "sync_content_item", "sync_missing_artwork"}
    assert instance["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    assert instance["run_monitoring"]["enabled"] is True


def test_every_instance_variable_is_set_where_the_instance_is_loaded(
    compose: dict[str, Any], instance: dict[str, Any], example: dict[str, str]
) -> None:
    needed = set(_env_references(instance)) - {"run_launcher"}
    assert needed >= {"DAGSTER_POSTGRES_URL", "DAGSTER_COMPUTE_LOGS_BUCKET"}
    services = compose_services(compose)
    for name in INSTANCE_USERS:
        environment = services[name].environment
        assert needed <= set(environment), name
        assert environment["DAGSTER_HOME"] == _dockerfile_env("DAGSTER_HOME"), name
        # boto3 (step logs in S3) reads the standard AWS variable names: the stack's S3 credentials.
        assert environment["AWS_ACCESS_KEY_ID"] == example["S3_ACCESS_KEY_ID"], name
        assert environment["AWS_SECRET_ACCESS_KEY"] == example["S3_SECRET_ACCESS_KEY"], name
    # dagster-postgres needs the psycopg2 driver named (SQLAlchemy 2.1 picks psycopg 3 otherwise).
    assert services["daemon"].environment["DAGSTER_POSTGRES_URL"].startswith("postgresql+psycopg2://")


def test_commands_are_the_projects_entry_points(compose: dict[str, Any]) -> None:
    services = compose_services(compose)
    workspace = yaml.safe_load(PRODUCTION_WORKSPACE.read_text())
    ((entry,),) = [workspace["load_from"]]
    server = entry["grpc_server"]
    code_server = services["code-server"].command
    assert code_server[:3] == ["dagster", "code-server", "start"]
    assert _option(code_server, "-m") == "tvdb_images.definitions"
    assert _option(code_server, "--location-name") == server["location_name"] == "tvdb_images"
    assert (server["host"], server["port"]) == ("code-server", int(_option(code_server, "-p")))
    assert int(_option(code_server, "-p")) == CONTAINER_PORTS["code-server"]
    workspace_path = PRODUCTION_WORKSPACE.relative_to(REPO_ROOT).as_posix()
    assert services["webserver"].command[0] == "dagster-webserver"
    assert services["daemon"].command[:4] == ["python", "-m", "tvdb_images.deployment.daemon", "run"]
    for name in ("webserver", "daemon"):
        assert _option(services[name].command, "-w") == workspace_path, name
    assert int(_option(services["webserver"].command, "-p")) == CONTAINER_PORTS["webserver"]
    assert services["api"].command[:2] == ["tvdb-images", "serve"]
    assert int(_option(services["api"].command, "--port")) == CONTAINER_PORTS["api"]
    assert services["migrate"].command == ["sh", "-c", "tvdb-images db upgrade && dagster instance migrate"]
    # Every `service:port` a service uses to reach another is a port that service listens on.
    for reference in address_references(compose):
        service, port = reference.split(":")
        assert CONTAINER_PORTS[service] == int(port), reference


def test_native_commands_equal_compose_commands_but_for_addresses(compose: dict[str, Any]) -> None:
    """What test_stack_native.py runs, derived the same way: only hosts, ports and paths differ."""
    addresses = NativeAddresses(
        endpoints={name: ("127.0.0.1", 41000 + index) for index, name in enumerate(CONTAINER_PORTS)},
        paths={"/opt/dagster/dagster_home": "/tmp/native-dagster-home"},
    )
    services = compose_services(compose)
    for name, native in native_commands(compose, addresses).items():
        service = services[name]
        assert len(native.argv) == len(service.command), name
        for ours, theirs in zip(native.argv, service.command, strict=True):
            assert ours == theirs or _only_addresses_differ(ours, theirs, addresses), (name, ours, theirs)
        assert set(native.environment) == set(service.environment), name
        for key, value in native.environment.items():
            original = service.environment[key]
            assert value == original or _only_addresses_differ(value, original, addresses), (name, key)
        assert native.healthcheck == (
            None if service.healthcheck is None else addresses.argv(service.healthcheck[1:], name)
        )
    native_instance = instance_for_native_run()
    production = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    assert "run_launcher" not in native_instance
    assert production["run_coordinator"]["config"]["dequeue_interval_seconds"] == 1
    production.pop("run_launcher")
    assert native_instance == production


def test_dockerfile_builds_what_compose_runs() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    # The image has the run launcher dagster.yaml names: DockerRunLauncher unless built for Kubernetes.
    assert re.search(r"^ARG EXTRAS=docker$", dockerfile, re.M)
    assert dockerfile.index("ARG EXTRAS=docker") < dockerfile.index("FROM "), "a global ARG, for every stage"
    assert 'pip wheel --wheel-dir /wheels ".[${EXTRAS}]"' in dockerfile
    assert 'pip install --no-index --find-links /wheels "tvdb-images[${EXTRAS}]"' in dockerfile
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["docker"] == ["dagster-docker==0.29.27"] and extras["k8s"] == ["dagster-k8s==0.29.27"]
    for source in re.findall(r"^COPY (?!--)(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (REPO_ROOT / path).exists(), f"COPY {path}: missing from the build context"
    assert 'cp dagster/dagster.yaml "$DAGSTER_HOME/dagster.yaml"' in dockerfile
    assert _dockerfile_env("DAGSTER_HOME") == "/opt/dagster/dagster_home"
    # Every process of the image writes a ranged run's events in batches: all that one run of the
    # widest range plans (two assets and two checks over MAX_PARTITIONS_PER_RUN partitions) fits one.
    assert int(_dockerfile_env("DAGSTER_EVENT_BATCH_SIZE")) >= 2 * MAX_PARTITIONS_PER_RUN + 2
    assert re.search(r"^WORKDIR /opt/dagster/app$", dockerfile, re.M)
    assert re.search(r"^USER tvdb$", dockerfile, re.M)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "tvdb_images_tests"} <= set(ignored)


def test_storage_compose_is_minio_alone_like_the_stacks(
    example: dict[str, str], compose: dict[str, Any]
) -> None:
    storage = load_compose(example, STORAGE_COMPOSE_FILE)
    assert set(storage["services"]) == {"minio", "create-buckets"}
    for name in ("minio", "create-buckets"):
        assert storage["services"][name]["image"] == compose["services"][name]["image"]
    assert storage["services"]["minio"]["ports"] == ["127.0.0.1:9000:9000", "127.0.0.1:9001:9001"]
    assert compose["services"]["minio"]["ports"] == storage["services"]["minio"]["ports"]


def test_a_compose_cli_reads_the_files_as_we_do(
    tmp_path: Path, example: dict[str, str], compose: dict[str, Any]
) -> None:
    """`docker compose config` (or docker-compose v1) resolves both files; its answer matches ours."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose CLI installed (docker compose plugin or docker-compose)")
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    for path, ours in (
        (REPO_ROOT / "docker-compose.yml", compose),
        (STORAGE_COMPOSE_FILE, load_compose(example, STORAGE_COMPOSE_FILE)),
    ):
        result = subprocess.run(
            [*cli, "-f", str(path), "--project-directory", str(tmp_path), "config"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        theirs = compose_services(_unescape(yaml.safe_load(result.stdout)))
        for name, service in compose_services(ours).items():
            assert theirs[name].environment == service.environment, name
            assert theirs[name].depends_on == service.depends_on, name
            if "command" in service.spec:
                assert theirs[name].command == service.command, name
            assert theirs[name].healthcheck == service.healthcheck, name


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _unescape(node: Any) -> Any:
    """`config` prints `$` escaped as `$$`, ready to be read again; compare the values themselves."""
    if isinstance(node, str):
        return node.replace("$$", "$")
    if isinstance(node, list):
        return [_unescape(item) for item in node]
    if isinstance(node, dict):
        return {key: _unescape(value) for key, value in node.items()}
    return node


def _only_addresses_differ(native: str, original: str, addresses: NativeAddresses) -> bool:
    if original == "0.0.0.0":
        return native == "127.0.0.1"
    if original.isdigit() and int(original) in CONTAINER_PORTS.values():
        return native.isdigit()
    if original in addresses.endpoints:  # a bare host name
        return native == addresses.endpoints[original][0]
    return addresses.text(original) == native or any(
        addresses.text(original, own_service=name) == native for name in addresses.endpoints
    )


def _effective(value: Any) -> Any:
    """A setting's value as the program acts on it: an empty secret is the same as none."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return "" if value is None else value


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _field_name(alias: str) -> str:
    return next(name for name, field in Settings.model_fields.items() if field.alias == alias)


def _dockerfile_env(name: str) -> str:
    match = re.search(rf"^ENV {name}=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match, f"Dockerfile sets no ENV {name}"
    return match.group(1)


def _env_references(node: Any, path: str = "") -> dict[str, str]:
    """{variable: where} for every `{env: VARIABLE}` in an instance config, by top-level section."""
    found: dict[str, str] = {}
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]: path}
        for key, value in node.items():
            section = path or key
            if section == "run_launcher":
                continue
            found |= _env_references(value, section)
    elif isinstance(node, list):
        for item in node:
            found |= _env_references(item, path)
    return found
