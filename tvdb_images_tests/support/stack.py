"""Read docker-compose.yml the way `docker compose` does, and turn its services into native commands.

The stack tests start the production processes without Docker. So that they cannot drift from the
compose file, every command and environment variable they use comes from docker-compose.yml itself:
the file is parsed with PyYAML (anchors and merge keys included), `${...}` is interpolated with the
compose rules from a `.env`-style mapping, and only addresses are rewritten: `service:port` becomes the
native `127.0.0.1:port`, a server's `-h 0.0.0.0 -p <port>` becomes `-h 127.0.0.1 -p <free port>`,
and paths inside the image (DAGSTER_HOME) become temporary directories.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
STORAGE_COMPOSE_FILE = REPO_ROOT / "docker-compose.storage.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
PRODUCTION_INSTANCE = REPO_ROOT / "dagster" / "dagster.yaml"
PRODUCTION_WORKSPACE = REPO_ROOT / "dagster" / "workspace.production.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

# The ports the services listen on inside the compose network.
CONTAINER_PORTS: dict[str, int] = {
    "postgres": 5432,
    "minio": 9000,
    "code-server": 4000,
    "webserver": 3000,
    "api": 8000,
}
# Services of the project's image, started natively by the stack test in this order; the others have
# native stand-ins (the machine's PostgreSQL, SeaweedFS for MinIO, boto3 for `mc mb`).
NATIVE_SERVICES: tuple[str, ...] = ("postgres-init", "migrate", "code-server", "webserver", "daemon", "api")
STAND_INS: dict[str, str] = {
    "postgres": "the machine's PostgreSQL server (fresh databases per test)",
    "minio": "SeaweedFS (tvdb_images_tests.support.services.start_seaweedfs)",
    "create-buckets": "boto3 create_bucket for each `store/<bucket>` argument of its command",
    "pushgateway": "Debian's prometheus-pushgateway (tvdb_images_tests.support.prometheus_stack)",
    "prometheus": "Debian's prometheus with deploy/prometheus's rules (stack/test_stack_dashboard.py)",
    "grafana": "none: the dashboard's queries are run through Prometheus (stack/test_stack_dashboard.py)",
}

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def dagster_postgres_url(url: str) -> str:
    """A PostgreSQL URL with the psycopg2 driver that dagster/dagster.yaml names for Dagster's storage."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def deployed_dagster_storage(postgres_url: str | None = None) -> dict[str, Any]:
    """The `storage` section of dagster/dagster.yaml, exactly as deployed, or pointed at `postgres_url`
    (a plain postgresql:// URL gets the deployment's driver)."""
    storage = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["storage"]
    if postgres_url is not None:
        storage["custom"]["config"] = {"postgres_url": dagster_postgres_url(postgres_url)}
    return storage


def image_environment() -> dict[str, str]:
    """The Dagster settings the image gives every process, from the Dockerfile's one-line
    `ENV DAGSTER_*=value` instructions; DAGSTER_HOME is left out, compose sets it for each service."""
    found = re.findall(r"^ENV (DAGSTER_[A-Z_]+)=(\S+)$", DOCKERFILE.read_text(), re.M)
    return {name: value for name, value in found if name != "DAGSTER_HOME"}


class InterpolationError(ValueError):
    """A `${VAR:?message}` whose variable is missing, as `docker compose` would refuse it."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR:+alt}` and `$$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        value = variables.get(name)
        op, arg = match.group("op"), match.group("arg") or ""
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in ("-", ":-"):
            return interpolate(arg, variables) if unset_or_empty else str(value)
        if op in ("?", ":?"):
            if unset_or_empty:
                raise InterpolationError(f"{name}: {arg or 'required variable is missing'}")
            return str(value)
        if op in ("+", ":+"):
            return "" if unset_or_empty else interpolate(arg, variables)
        return "" if value is None else str(value)

    return _INTERPOLATION.sub(replace, text)


def _interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The variables a `.env` file sets (commented lines are not set), without interpolation."""
    return {key: value or "" for key, value in dotenv_values(path, interpolate=False).items()}


def load_compose(variables: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with anchors merged and `${...}` interpolated; raw if `variables` is None."""
    document = yaml.safe_load(path.read_text())
    return document if variables is None else _interpolate_tree(document, variables)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Service:
    """One service of a (loaded) compose file, with the parts the tests need normalised."""

    name: str
    spec: Mapping[str, Any]

    @property
    def command(self) -> list[str]:
        command = self.spec.get("command")
        if not isinstance(command, list):
            raise TypeError(f"{self.name}: command must be a list (exec form), got {command!r}")
        return [_scalar(part) for part in command]

    @property
    def environment(self) -> dict[str, str]:
        environment = self.spec.get("environment") or {}
        if isinstance(environment, list):
            pairs = (item.split("=", 1) if "=" in item else (item, "") for item in environment)
            return {key: value for key, value in pairs}
        return {key: _scalar(value) for key, value in environment.items()}

    @property
    def healthcheck(self) -> list[str] | None:
        test = (self.spec.get("healthcheck") or {}).get("test")
        if test is None:
            return None
        return [_scalar(part) for part in test] if isinstance(test, list) else ["CMD-SHELL", test]

    @property
    def depends_on(self) -> dict[str, str]:
        depends = self.spec.get("depends_on") or {}
        if isinstance(depends, list):
            return {name: "service_started" for name in depends}
        return {name: (spec or {}).get("condition", "service_started") for name, spec in depends.items()}


def compose_services(document: Mapping[str, Any]) -> dict[str, Service]:
    return {name: Service(name, spec) for name, spec in document["services"].items()}


@dataclass
class NativeAddresses:
    """Where the compose services are reachable natively, and where the image's paths are."""

    endpoints: dict[str, tuple[str, int]]
    paths: dict[str, str] = field(default_factory=dict)

    def _address_pairs(self, own_service: str | None) -> list[tuple[str, str]]:
        pairs = []
        for service, (host, port) in self.endpoints.items():
            container_port = CONTAINER_PORTS[service]
            pairs.append((f"{service}:{container_port}", f"{host}:{port}"))
            if service == own_service:
                pairs.append((f"127.0.0.1:{container_port}", f"{host}:{port}"))
                pairs.append((f"localhost:{container_port}", f"{host}:{port}"))
        return pairs

    def text(self, value: str, own_service: str | None = None) -> str:
        """`service:port` (and the service's own `127.0.0.1:port`) rewritten to native addresses."""
        for container, native in self._address_pairs(own_service):
            value = value.replace(container, native)
        for container_path, native_path in self.paths.items():
            if value == container_path or value.startswith(container_path + "/"):
                value = native_path + value[len(container_path) :]
        return value

    def environment(self, environment: Mapping[str, str]) -> dict[str, str]:
        native = {}
        for key, value in environment.items():
            if key.endswith("HOST") and value in self.endpoints:  # a bare host name: PGHOST=postgres
                value = self.endpoints[value][0]
            native[key] = self.text(value)
        return native

    def argv(self, argv: Sequence[str], service: str) -> list[str]:
        """A server's bind address and port, and every address in its arguments, made native."""
        native: list[str] = []
        previous = ""
        for token in argv:
            if previous in ("-h", "--host") and token == "0.0.0.0":
                token = "127.0.0.1"
            elif previous in ("-p", "--port") and token == str(CONTAINER_PORTS.get(service)):
                token = str(self.endpoints[service][1])
            else:
                token = self.text(token, own_service=service)
            native.append(token)
            previous = token
        return native


@dataclass(frozen=True)
class NativeCommand:
    """A compose service as the stack test runs it: argv and environment, both derived from the file."""

    service: str
    argv: list[str]
    environment: dict[str, str]
    healthcheck: list[str] | None


def native_commands(document: Mapping[str, Any], addresses: NativeAddresses) -> dict[str, NativeCommand]:
    """The project's services of an interpolated compose file, rewritten to run on this machine."""
    found = compose_services(document)
    commands = {}
    for name in NATIVE_SERVICES:
        service = found[name]
        check = service.healthcheck
        native_check = None
        if check is not None:
            if check[0] != "CMD":
                raise ValueError(f"{name}: healthchecks of the project's image use the exec form (CMD)")
            native_check = addresses.argv(check[1:], name)
        commands[name] = NativeCommand(
            service=name,
            argv=addresses.argv(service.command, name),
            environment=addresses.environment(service.environment),
            healthcheck=native_check,
        )
    return commands


def address_references(document: Mapping[str, Any]) -> set[str]:
    """Every `service:port` string the compose file's services use to reach each other."""
    names = "|".join(re.escape(name) for name in document["services"])
    pattern = re.compile(rf"(?<![\w.-])({names}):(\d+)\b")
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.update(f"{m.group(1)}:{m.group(2)}" for m in pattern.finditer(node))
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    for spec in document["services"].values():
        walk({key: value for key, value in spec.items() if key not in ("ports", "image")})
    return found


def instance_for_native_run() -> dict[str, Any]:
    """dagster/dagster.yaml as the native stack test uses it.

    One difference, about the absence of Docker: runs are launched as subprocesses of the code server
    (Dagster's default run launcher) instead of DockerRunLauncher containers. Storage, the run queue
    and its limits, run retries, run monitoring and S3 step logs are unchanged.
    """
    instance = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    instance.pop("run_launcher")
    return instance


def tag_concurrency_limit(key: str, value: str | None = None) -> int:
    """The production instance's run limit for runs tagged `key` (= `value`)."""
    limits = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    return next(limit["limit"] for limit in limits if limit["key"] == key and limit.get("value") == value)


def workspace_for_native_run(addresses: NativeAddresses) -> dict[str, Any]:
    """dagster/workspace.production.yaml with the code server's address made native."""
    workspace = yaml.safe_load(PRODUCTION_WORKSPACE.read_text())
    for entry in workspace["load_from"]:
        server = entry["grpc_server"]
        host, port = addresses.endpoints[server["host"]]
        if int(server["port"]) != CONTAINER_PORTS[server["host"]]:
            raise ValueError(f"workspace points at {server['host']}:{server['port']}, not its container port")
        server["host"], server["port"] = host, port
    return workspace
