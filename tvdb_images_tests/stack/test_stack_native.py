"""The production stack of docker-compose.yml, started natively and driven through Dagster's GraphQL API.

There is no Docker engine in CI, so this test starts the same commands with the same environment the
compose file gives each service (read from docker-compose.yml by `tvdb_images_tests.support.stack`, only
addresses rewritten): the migrations step, the gRPC code server, dagster-webserver, dagster-daemon and
the serving API, with a DAGSTER_HOME holding the production dagster.yaml (PostgreSQL storage, the
queued run coordinator and its tag limits, run retries, run monitoring, S3 step logs). PostgreSQL is
the machine's server (fresh databases) and SeaweedFS stands in for MinIO; the compose healthchecks
are run natively too.

Then it does what an operator does on day one: imports a catalog, launches a backfill of the
`sync_images` assets over every shard of one content type (as the UI's Materialize dialog does) and
asks the serving API's admin endpoint to sync one more item; it waits for the daemon and checks the
runs (how many, their tags, the concurrency limit), the objects in S3, the catalog rows, the
materialization metadata and the serving API's answers.

Differences from compose, all for want of Docker or of time: runs are subprocesses of the code server
(Dagster's default run launcher) instead of DockerRunLauncher containers; the run queue is polled
every second instead of every five; and the backfill's runs use the in-process executor (one process
a run rather than one a step), which takes a run from ~55 s to ~12 s on a 2-core machine.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml
from PIL import Image
from sqlalchemy.engine import make_url

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.defs.jobs import SOURCE_HOST_TAG
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN, artwork_partitions
from tvdb_images.imaging.sizes import SIZE_BOXES
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images.storage.layout import SHARDS, SIZES, is_layout_key
from tvdb_images_tests.support import services
from tvdb_images_tests.support.builders import CatalogEntry, catalog_lines, corpus_entries
from tvdb_images_tests.support.dagster_api import Backfill, DagsterAPI
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.stack import (
    NativeAddresses,
    NativeCommand,
    Service,
    compose_services,
    image_environment,
    instance_for_native_run,
    load_compose,
    native_commands,
    read_env_file,
    tag_concurrency_limit,
    workspace_for_native_run,
)
from tvdb_images_tests.support.waiting import wait_until

pytestmark = pytest.mark.stack

SYNC_ASSETS = ["missing_artwork", "source_images", "image_renditions"]  # the assets of sync_images
BACKFILL_CONTENT_TYPE = "series"  # every shard: 256 partitions, one run of MAX_PARTITIONS_PER_RUN
ADMIN_SYNCED_CONTENT_TYPE = "movies"  # one item synced through the serving API's admin endpoint
# One process a run: the steps run one after another, so a process a step only adds start-up time.
ADMIN_TOKEN = "stack-test-admin-token"
TIMEOUTS = {"one_shot": 120, "server": 90, "backfill": 240}


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
        # Only what compose gives the container, plus what any container of the image has (PATH, HOME,
        # locale, the Dockerfile's Dagster settings).
        base = {"PATH": _tool_path(), "HOME": str(self.app_dir), "LANG": "C.UTF-8"} | image_environment()
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
        results: list[subprocess.CompletedProcess[str]] = []

        def passes() -> bool:
            run = subprocess.run(
                check, env=self.env(service), cwd=self.app_dir, capture_output=True, text=True, timeout=30
            )
            results.append(run)
            return run.returncode == 0

        wait_until(
            passes,
            timeout,
            1,
            lambda: f"{service} healthcheck {check} failed: {results[-1].stdout}{results[-1].stderr}",
        )

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
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "API_WORKERS": "1",
    }


def _create_buckets(service: Service, seaweedfs: services.SeaweedFS) -> list[str]:
    """What `mc mb --ignore-existing store/<bucket> ...` does, against SeaweedFS."""
    command = service.command
    assert command[:2] == ["mb", "--ignore-existing"], command
    buckets = [argument.removeprefix("store/") for argument in command[2:]]
    client = seaweedfs.s3_client()
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    return buckets


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
    document = load_compose(_operator_env(catalog_db, dagster_db, seaweedfs, origin, suffix))
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
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(yaml.safe_dump(instance_for_native_run()))
    app_dir = tmp_path / "app"
    (app_dir / "dagster").mkdir(parents=True)
    (app_dir / "dagster" / "workspace.production.yaml").write_text(
        yaml.safe_dump(workspace_for_native_run(addresses))
    )

    # Stand-ins for the services that are not the project's image.
    services.create_database(catalog_db)  # the postgres image creates POSTGRES_DB on first start
    buckets = _create_buckets(compose_services(document)["create-buckets"], seaweedfs)

    web_url = "http://{}:{}".format(*addresses.endpoints["webserver"])
    api_url = "http://{}:{}".format(*addresses.endpoints["api"])
    stack = NativeStack(commands, app_dir, tmp_path / "logs")
    try:
        stack.run_once("postgres-init")
        stack.run_once("migrate")
        stack.start("code-server").wait_port(
            addresses.endpoints["code-server"][1], timeout=TIMEOUTS["server"]
        )
        stack.healthcheck("code-server")
        webserver, _, api = (stack.start(name) for name in ("webserver", "daemon", "api"))
        webserver.wait_http(f"{web_url}/server_info", timeout=TIMEOUTS["server"])
        api.wait_http(f"{api_url}/healthz", timeout=TIMEOUTS["server"])
        for service in ("webserver", "api", "daemon"):
            stack.healthcheck(service)
        stack.timings["stack_up_s"] = time.monotonic() - began

        # Day one: import the catalog (with the api service's environment, as `docker compose run` would).
        corpus_catalog = corpus_entries(corpus_dir, include_edge=False, include_bad=False)
        entries = corpus_catalog.entries
        catalog_file = tmp_path / "catalog.jsonl"
        catalog_file.write_text("\n".join(catalog_lines(corpus_catalog, origin.url("").rstrip("/"))) + "\n")
        importer = subprocess.run(
            ["tvdb-images", "catalog", "import", str(catalog_file)],
            env=stack.env("api"),
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert importer.returncode == 0, importer.stderr

        # A backfill of every shard of one content type, and one more item through the admin API.
        dagster = DagsterAPI(f"{web_url}/graphql")
        requested = [str(partition_key(BACKFILL_CONTENT_TYPE, shard)) for shard in SHARDS]
        launched = time.monotonic()
        backfill_id = dagster.launch_asset_backfill(SYNC_ASSETS, requested, tags=SOURCE_HOST_TAG)
        admin_item = next(e for e in entries if e.content_type == ADMIN_SYNCED_CONTENT_TYPE)
        task_id = _admin_sync(api_url, admin_item)
        backfill = dagster.wait_for_backfill(backfill_id, timeout=TIMEOUTS["backfill"])
        task = _wait_for_task(api_url, task_id, timeout=TIMEOUTS["backfill"])
        stack.timings["backfill_s"] = time.monotonic() - launched

        materializations = dagster.materializations("image_renditions", limit=len(requested) + 10)
        synced = [e for e in entries if e.content_type == BACKFILL_CONTENT_TYPE] + [admin_item]
        served = _serving_answers(api_url, synced)
        for service, process in stack.processes.items():
            assert process.alive(), f"{service} died:\n{process.log_tail()}"
    finally:
        stack.stop()

    # The runs: 256 partitions each, tagged for the TVDB host's limit, which held across the backfill
    # and the admin API's run.
    assert task["status"] == "succeeded" and task["job"] == "sync_content_item", task
    _check_backfill_runs(backfill, backfill_id, requested)
    intervals = [(run.start_time or 0, run.end_time or 0) for run in backfill.runs]
    intervals.append((_timestamp(task["started_at"]), _timestamp(task["ended_at"])))
    overlap = _max_overlap(intervals)
    ((tag, value),) = SOURCE_HOST_TAG.items()
    assert 1 <= overlap <= tag_concurrency_limit(tag, value)
    stack.timings |= {"backfill_runs": len(backfill.runs), "most_runs_at_once": overlap}

    renditions = _check_catalog(commands["api"].environment["DATABASE_URL"], entries, synced)
    _check_objects(seaweedfs.s3_client(), buckets, renditions)

    # Materialization metadata, as an analyst reads it: an event for every partition of the backfill,
    # each with its own partition's counts, which add up to the artwork of the content type.
    backfilled = [event for event in materializations if event["run_id"] != task_id]
    assert {event["partition"] for event in backfilled} >= set(requested)
    latest = {event["partition"]: event["metadata"]["succeeded"] for event in backfilled}
    assert sum(latest.values()) == len(synced) - 1

    # The serving API answers with the stored images.
    for path, (status, content_type, body) in served.items():
        assert status == 200, (path, status, body[:300])
        if path.startswith("/api/v1/images/"):
            assert content_type == "image/webp", path
            with Image.open(io.BytesIO(body)) as image:
                assert image.format == "WEBP" and image.width <= 300 and image.height <= 169

    print(f"\nstack: {json.dumps({k: round(v, 1) for k, v in stack.timings.items()})}")


def _admin_sync(api_url: str, entry: CatalogEntry) -> str:
    response = httpx.post(
        f"{api_url}/api/v1/admin/sync/images/{entry.content_type}/{entry.content_id}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def _wait_for_task(api_url: str, task_id: str, *, timeout: float) -> dict:
    seen: list[dict] = []

    def finished() -> dict | None:
        response = httpx.get(
            f"{api_url}/api/v1/admin/tasks/{task_id}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        seen.append(response.json())
        return seen[-1] if seen[-1]["finished"] else None

    return wait_until(finished, timeout, 1, lambda: f"task {task_id} not finished: {seen[-1]}")


def _timestamp(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def _check_backfill_runs(backfill: Backfill, backfill_id: str, requested: list[str]) -> None:
    """Done, every run a range of 256 partitions (BackfillPolicy.multi_run), together exactly the request."""
    assert backfill.status == "COMPLETED_SUCCESS", backfill
    assert backfill.num_partitions == len(requested)
    assert len(backfill.runs) == len(requested) // MAX_PARTITIONS_PER_RUN
    covered: set[str] = set()
    for run in backfill.runs:
        assert run.status == "SUCCESS", run
        assert run.tags["dagster/backfill"] == backfill_id
        assert SOURCE_HOST_TAG.items() <= run.tags.items()
        keys = artwork_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG])
        )
        assert len(keys) == MAX_PARTITIONS_PER_RUN
        covered.update(keys)
    assert covered == set(requested)


def _check_catalog(database_url: str, entries: list[CatalogEntry], synced: list[CatalogEntry]):
    """What was synced is processed with every size recorded; the rest of the catalog is untouched."""
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


def _check_objects(s3, buckets: list[str], renditions) -> None:
    """Every rendition at its layout key as WebP with the recorded dimensions, inside its size's box;
    every source once in the originals bucket; step logs in the compute-logs bucket."""
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


def _serving_answers(api_url: str, synced: list[CatalogEntry]) -> dict[str, tuple[int, str, bytes]]:
    """The serving API's probes and the synced items' thumbnails, fetched while the stack runs."""
    paths = ["/healthz", "/readyz"] + [
        f"/api/v1/images/{e.content_type}/{e.content_id}/{e.image_type}/thumbnail" for e in synced
    ]
    answers = {}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for path in paths:
            response = client.get(path)
            answers[path] = (response.status_code, response.headers.get("content-type", ""), response.content)
    return answers
