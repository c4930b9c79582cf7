"""The production stack of docker-compose.yml, started natively and driven through Dagster's GraphQL API.

There is no Docker engine in CI, so this test starts the same commands with the same environment the
compose file gives each service (read from docker-compose.yml by `tvdb_images_tests.stack`, only
addresses rewritten): the migrations step, the gRPC code server, dagster-webserver, dagster-daemon and
the serving API, with a DAGSTER_HOME holding the production dagster.yaml (PostgreSQL storage, the
queued run coordinator and its tag limits, run retries, run monitoring, S3 step logs). PostgreSQL is
the machine's server (fresh databases) and SeaweedFS stands in for MinIO. Two differences from
compose, both because there is no Docker: runs are subprocesses of the code server (Dagster's default
run launcher) instead of DockerRunLauncher containers, and the run queue is polled every second.

It then launches a backfill of `sync_images` the way the UI does, waits for the daemon to run it and
checks what an operator would: the runs (how many, their tags, the concurrency limit), the objects in
S3, the catalog rows, the materialization metadata and the serving API's answers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import httpx
import pytest
import yaml
from PIL import Image
from sqlalchemy.engine import make_url

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.defs.jobs import SOURCE_HOST_TAG
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN, artwork_partitions, partition_key
from tvdb_images.defs.requests import RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.imaging.sizes import SIZE_BOXES
from tvdb_images.storage.layout import SHARDS, SIZES, is_layout_key
from tvdb_images_tests import services
from tvdb_images_tests.builders import CatalogEntry, catalog_lines, corpus_entries
from tvdb_images_tests.dagster_api import DagsterAPI
from tvdb_images_tests.origins import LoopbackOrigin
from tvdb_images_tests.processes import ManagedProcess, free_port
from tvdb_images_tests.stack import (
    NativeAddresses,
    NativeCommand,
    Service,
    instance_for_native_run,
    load_compose,
    native_commands,
    read_env_file,
    workspace_for_native_run,
)
from tvdb_images_tests.stack import (
    services as compose_services,
)

pytestmark = pytest.mark.stack

LOCATION = "tvdb_images"
BACKFILL_CONTENT_TYPES = ("movies", "series")  # every shard of each: 2 x 256 partitions
SOURCE_HOST_LIMIT = 2  # dagster/dagster.yaml: tag_concurrency_limits for tvdb_images/source_host
TIMEOUTS = {"one_shot": 120, "server": 90, "backfill": 150}


def _tool_path() -> str:
    """The venv's scripts first, as the image's PATH has the installed project's."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


class NativeStack:
    """The compose services of the project's image as processes, each stopped by its own pid."""

    def __init__(self, commands: dict[str, NativeCommand], app_dir: Path, log_dir: Path) -> None:
        self.commands = commands
        self.app_dir = app_dir
        self.log_dir = log_dir
        self.processes: dict[str, ManagedProcess] = {}
        self.timings: dict[str, float] = {}

    def env(self, service: str) -> dict[str, str]:
        # Only what compose gives the container, plus what any container has (PATH, HOME, locale).
        base = {"PATH": _tool_path(), "HOME": str(self.app_dir), "LANG": "C.UTF-8"}
        return base | self.commands[service].environment

    def run_once(self, service: str) -> None:
        started = time.monotonic()
        result = subprocess.run(
            self.commands[service].argv,
            env=self.env(service),
            cwd=self.app_dir,
            capture_output=True,
            text=True,
            timeout=TIMEOUTS["one_shot"],
        )
        assert result.returncode == 0, f"{service} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        self.timings[service] = time.monotonic() - started

    def start(self, service: str) -> ManagedProcess:
        process = ManagedProcess(
            service,
            self.commands[service].argv,
            env=self.env(service),
            cwd=self.app_dir,
            log_dir=self.log_dir,
        )
        self.processes[service] = process.start()
        return process

    def healthcheck(self, service: str, *, timeout: float = 60) -> None:
        """Run the service's compose healthcheck natively until it passes, as Docker would."""
        check = self.commands[service].healthcheck
        assert check is not None, f"{service} has no healthcheck"
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(
                check, env=self.env(service), cwd=self.app_dir, capture_output=True, text=True, timeout=30
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} healthcheck {check} failed: {result.stdout}{result.stderr}")
            time.sleep(1)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


@pytest.fixture
def stack_databases() -> Iterator[tuple[str, str]]:
    if not services.postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {services.PG_ADMIN_URL}")
    names = (services.unique_name("tvdb_stack_catalog"), services.unique_name("tvdb_stack_dagster"))
    yield names
    for name in names:
        services.drop_database(name)


def _operator_env(
    catalog_db: str, dagster_db: str, seaweedfs: services.SeaweedFS, origin: LoopbackOrigin, suffix: str
) -> dict[str, str]:
    """`cp .env.example .env`, then the edits an operator makes, here pointing at the test's services."""
    return read_env_file() | {
        "POSTGRES_USER": make_url(services.PG_ADMIN_URL).username or "postgres",
        "POSTGRES_PASSWORD": "unused-with-trust-auth",
        "POSTGRES_DB": catalog_db,
        "DAGSTER_POSTGRES_DB": dagster_db,
        "S3_ACCESS_KEY_ID": seaweedfs.access_key,
        "S3_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        "S3_BUCKET_ORIGINALS": f"{suffix}-originals",
        "S3_BUCKET_THUMBNAILS": f"{suffix}-thumbnails",
        "DAGSTER_COMPUTE_LOGS_BUCKET": f"{suffix}-compute-logs",
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": "1",
        "RENDER_WORKERS": "2",
        "ADMIN_API_TOKEN": "stack-test-admin-token",
        "API_WORKERS": "1",
    }


def _create_buckets(service: Service, seaweedfs: services.SeaweedFS) -> list[str]:
    """What `mc mb --ignore-existing store/<bucket> ...` does, against SeaweedFS."""
    command = service.command
    assert command[:2] == ["mb", "--ignore-existing"], command
    buckets = [argument.removeprefix("store/") for argument in command[2:]]
    client = _s3(seaweedfs)
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    return buckets


def _s3(seaweedfs: services.SeaweedFS):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name="us-east-1",
    )


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_compose_stack_runs_a_backfill_natively(
    tmp_path: Path,
    stack_databases: tuple[str, str],
    seaweedfs: services.SeaweedFS,
    origin: LoopbackOrigin,
    corpus_dir: Path,
) -> None:
    began = time.monotonic()
    catalog_db, dagster_db = stack_databases
    suffix = services.unique_name("stack").replace("_", "-")
    variables = _operator_env(catalog_db, dagster_db, seaweedfs, origin, suffix)
    document = load_compose(variables)
    compose = compose_services(document)

    pg = make_url(services.PG_ADMIN_URL)
    addresses = NativeAddresses(
        endpoints={
            "postgres": (pg.host or "127.0.0.1", pg.port or 5432),
            "minio": ("127.0.0.1", seaweedfs.s3_port),
            "code-server": ("127.0.0.1", free_port()),
            "webserver": ("127.0.0.1", free_port()),
            "api": ("127.0.0.1", free_port()),
        },
        paths={"/opt/dagster/dagster_home": str(tmp_path / "dagster_home")},
    )
    commands = native_commands(document, addresses)

    # The image's layout: DAGSTER_HOME with the production instance, the app directory with the workspace.
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_for_native_run()))
    app_dir = tmp_path / "app"
    (app_dir / "dagster").mkdir(parents=True)
    (app_dir / "dagster" / "workspace.production.yaml").write_text(
        yaml.safe_dump(workspace_for_native_run(addresses))
    )

    # Stand-ins for the services that are not the project's image.
    services.create_database(catalog_db)  # the postgres image creates POSTGRES_DB on first start
    buckets = _create_buckets(compose["create-buckets"], seaweedfs)

    stack = NativeStack(commands, app_dir, tmp_path / "logs")
    try:
        stack.run_once("postgres-init")
        stack.run_once("migrate")

        code_server = stack.start("code-server")
        code_server.wait_port(addresses.endpoints["code-server"][1], timeout=TIMEOUTS["server"])
        stack.healthcheck("code-server")
        webserver = stack.start("webserver")
        stack.start("daemon")
        api = stack.start("api")
        web_host, web_port = addresses.endpoints["webserver"]
        webserver.wait_http(f"http://{web_host}:{web_port}/server_info", timeout=TIMEOUTS["server"])
        api_host, api_port = addresses.endpoints["api"]
        api_url = f"http://{api_host}:{api_port}"
        api.wait_http(f"{api_url}/healthz", timeout=TIMEOUTS["server"])
        for service in ("webserver", "api", "daemon"):
            stack.healthcheck(service)
        stack.timings["stack_up"] = time.monotonic() - began

        # The operator imports a catalog (with the api service's environment, as `docker compose run`).
        entries = corpus_entries(corpus_dir, include_edge=False, include_bad=False)
        catalog_file = tmp_path / "catalog.jsonl"
        catalog_file.write_text("\n".join(catalog_lines(entries, origin.url("").rstrip("/"))) + "\n")
        importer = subprocess.run(
            ["tvdb-images", "catalog", "import", str(catalog_file)],
            env=stack.env("api"),
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert importer.returncode == 0, importer.stderr

        # A backfill of every shard of two content types, launched as the UI's "Launch backfill" does.
        dagster = DagsterAPI(f"http://{web_host}:{web_port}/graphql")
        requested = [
            str(partition_key(content_type, shard))
            for content_type in BACKFILL_CONTENT_TYPES
            for shard in SHARDS
        ]
        launched = time.monotonic()
        backfill_id = dagster.launch_job_backfill("sync_images", requested, location=LOCATION)
        backfill = dagster.wait_for_backfill(backfill_id, timeout=TIMEOUTS["backfill"])
        stack.timings["backfill"] = time.monotonic() - launched

        materializations = dagster.materializations("image_renditions", limit=len(requested))
        served = _serving_answers(api_url, entries.entries)
        for service, process in stack.processes.items():
            assert process.alive(), f"{service} died:\n{process.log_tail()}"
    finally:
        stack.stop()

    _check_runs(backfill, backfill_id, requested)
    stack.timings["runs"] = len(backfill.runs)
    stack.timings["max_concurrent_runs_seen"] = _max_overlap(
        [(run.start_time or 0, run.end_time or 0) for run in backfill.runs]
    )
    synced = [e for e in entries.entries if e.content_type in BACKFILL_CONTENT_TYPES]
    renditions = _check_catalog(commands["api"].environment["DATABASE_URL"], entries.entries, synced)
    _check_objects(_s3(seaweedfs), buckets, renditions)

    # Materialization metadata, as an analyst reads it: one event per partition of the backfill,
    # the run's counts on each; together they account for every synced artwork.
    assert {event["partition"] for event in materializations} == set(requested)
    succeeded = {event["run_id"]: event["metadata"]["succeeded"] for event in materializations}
    assert sum(succeeded.values()) == len(synced)

    for path, (status, content_type, body) in served.items():
        if path == "/healthz":
            assert status == 200
            continue
        assert status == 200, (path, status)
        assert content_type == "image/webp", path
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == "WEBP" and max(image.size) <= 300

    print(f"\nstack timings: {json.dumps({k: round(v, 1) for k, v in stack.timings.items()})}")


def _check_runs(backfill, backfill_id: str, requested: list[str]) -> None:  # type: ignore[no-untyped-def]
    """64 partitions a run (BackfillPolicy.multi_run), tagged for the source host limit, which held."""
    assert backfill.status == "COMPLETED_SUCCESS", backfill
    assert backfill.num_partitions == len(requested)
    runs = backfill.runs
    assert len(runs) == len(requested) // MAX_PARTITIONS_PER_RUN
    covered: set[str] = set()
    for run in runs:
        assert run.status == "SUCCESS", run
        assert run.tags["dagster/backfill"] == backfill_id
        for key, value in SOURCE_HOST_TAG.items():
            assert run.tags[key] == value
        keys = artwork_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG])
        )
        assert len(keys) == MAX_PARTITIONS_PER_RUN
        covered.update(keys)
    assert covered == set(requested)
    overlap = _max_overlap([(run.start_time or 0, run.end_time or 0) for run in runs])
    assert 1 <= overlap <= SOURCE_HOST_LIMIT


def _check_catalog(database_url: str, entries: list[CatalogEntry], synced: list[CatalogEntry]):  # type: ignore[no-untyped-def]
    """What the backfill covered is processed with all sizes recorded; the rest is untouched."""
    synced_ids = {e.artwork_id for e in synced}
    assert synced and len(synced) < len(entries)
    catalog = Catalog(database_url)
    try:
        with catalog.session() as session:
            renditions = {}
            for entry in entries:
                row = session.get(Artwork, entry.artwork_id)
                if entry.artwork_id not in synced_ids:
                    assert row.status == ArtworkStatus.PENDING, entry
                    continue
                assert row.status == ArtworkStatus.PROCESSED, (entry, row.failure_cause, row.failure_detail)
                renditions[entry.artwork_id] = (
                    row.storage_path,
                    [(r.size, r.storage_key, r.content_type, r.width, r.height) for r in row.renditions],
                )
    finally:
        catalog.dispose()
    return renditions


def _check_objects(s3, buckets: list[str], renditions) -> None:  # type: ignore[no-untyped-def]
    """Every rendition at its layout key as WebP with the recorded dimensions, inside its size's box;
    every source in the originals bucket; step logs in the compute-logs bucket."""
    originals_bucket, thumbnails_bucket, logs_bucket = buckets
    for storage_path, sizes in renditions.values():
        assert sorted(size for size, *_ in sizes) == sorted(SIZES)
        for size, key, content_type, width, height in sizes:
            assert is_layout_key(key) and key.startswith(storage_path + "/"), key
            stored = s3.get_object(Bucket=thumbnails_bucket, Key=key)
            assert stored["ContentType"] == content_type == "image/webp"
            with Image.open(io.BytesIO(stored["Body"].read())) as image:
                assert image.format == "WEBP" and image.size == (width, height)
            box = SIZE_BOXES[size]
            assert box is None or (width <= box[0] and height <= box[1])
        sources = s3.list_objects_v2(Bucket=originals_bucket, Prefix=storage_path + "/")
        assert sources.get("KeyCount", 0) == 1, f"source of {storage_path} not stored once"
    step_logs = s3.list_objects_v2(Bucket=logs_bucket, Prefix="compute-logs/")
    assert step_logs.get("KeyCount", 0) > 0, "no step logs in S3 (S3ComputeLogManager)"


def _serving_answers(api_url: str, entries: list[CatalogEntry]) -> dict[str, tuple[int, str, bytes]]:
    """The serving API's answers for the synced items' thumbnails, fetched while the stack runs."""
    answers = {}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        health = client.get("/healthz")
        answers["/healthz"] = (health.status_code, health.headers.get("content-type", ""), health.content)
        if not _has_image_route(client):
            return answers
        for entry in entries:
            if entry.content_type not in BACKFILL_CONTENT_TYPES:
                continue
            path = f"/api/v1/images/{entry.content_type}/{entry.content_id}/{entry.image_type}/thumbnail"
            response = client.get(path, follow_redirects=True)
            answers[path] = (response.status_code, response.headers.get("content-type", ""), response.content)
    return answers


def _has_image_route(client: httpx.Client) -> bool:
    spec = client.get("/openapi.json")
    return spec.status_code == 200 and any(
        path.startswith("/api/v1/images/{content_type}") for path in spec.json().get("paths", {})
    )
