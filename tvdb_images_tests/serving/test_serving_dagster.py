"""The admin endpoints against a real `dagster-webserver`: launch a sync of one content item through
Dagster's GraphQL API, poll the task until the run succeeds, then fetch the image it stored.

The webserver loads the code location with `-m tvdb_images.definitions` from a temporary DAGSTER_HOME
whose instance launches runs at once (DefaultRunCoordinator) in a subprocess (DefaultRunLauncher),
with the production setup's environment: PostgreSQL catalog, SeaweedFS S3 storage. Loaded that way
the location is named `tvdb_images.definitions`, not `tvdb_images`, so the client's lookup of the
job's location is exercised as well.
"""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from serving.dagster_client import (
    JOB_LOCATIONS_QUERY,
    DagsterClient,
    DagsterError,
    DagsterUnavailable,
    RunNotFound,
)
from serving.routes.admin import RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images.imaging import fit_inside
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN, base_values, catalog_lines, s3_values
from tvdb_images_tests.support.waiting import wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ITEM = ("series", 777, 7001, "poster", "tvdb/poster_a.jpg", "eng", 10)
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


@dataclass
class DagsterStack:
    settings: Settings
    graphql_url: str
    webserver: ManagedProcess


def _wait_for_code_location(url: str, webserver: ManagedProcess, timeout: float = 60) -> None:
    """The webserver answers before its code server has loaded the definitions: wait for the jobs."""

    def loaded() -> bool:
        if not webserver.alive():
            raise RuntimeError(f"dagster-webserver exited:\n{webserver.log_tail()}")
        data = httpx.post(url, json={"query": JOB_LOCATIONS_QUERY}, timeout=5).json()["data"]
        nodes = data["repositoriesOrError"].get("nodes") or []
        return any(job["name"] == "sync_content_item" for node in nodes for job in node["jobs"])

    wait_until(
        loaded,
        timeout,
        0.5,
        lambda: f"code location not loaded:\n{webserver.log_tail()}",
        ignore=(httpx.HTTPError, KeyError, TypeError, ValueError),
    )


@pytest.fixture(scope="module")
def dagster_stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_template: str,
    seaweedfs: services.SeaweedFS,
    corpus_dir: Path,
) -> Iterator[DagsterStack]:
    root = tmp_path_factory.mktemp("serving-dagster")
    name = services.unique_name("tvdb_images_dagster")
    database_url = services.create_database(name, template=postgres_template)
    port = free_port()
    graphql_url = f"http://127.0.0.1:{port}/graphql"
    with LoopbackOrigin(corpus_dir) as origin:
        values = (
            base_values(origin, database_url)
            | s3_values(seaweedfs, services.unique_name("dagster").replace("_", "-"))
            | {"DAGSTER_GRAPHQL_URL": graphql_url}
        )
        settings = Settings.model_validate(values)
        catalog = Catalog(database_url)
        import_catalog_lines(catalog, catalog_lines([ITEM], origin))
        catalog.dispose()

        home = root / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
        env = {**os.environ, **{k: str(v) for k, v in values.items()}}
        env |= {"DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}
        webserver = ManagedProcess(
            "dagster-webserver",
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                *("-h", "127.0.0.1", "-p", str(port), "-m", "tvdb_images.definitions"),
            ],
            env=env,
            cwd=root,
            log_dir=root,
        ).start()
        try:
            webserver.wait_http(f"http://127.0.0.1:{port}/server_info", timeout=60)
            _wait_for_code_location(graphql_url, webserver)
            yield DagsterStack(settings, graphql_url, webserver)
        finally:
            webserver.stop()
            services.drop_database(name)


def _wait_for_task(client: TestClient, status_url: str, timeout: float = 50) -> dict:  # type: ignore[type-arg]
    seen = []

    def finished() -> dict | None:  # type: ignore[type-arg]
        task = client.get(status_url, headers=ADMIN)
        assert task.status_code == 200, task.text
        body = task.json()
        seen.append(body["status"])
        return body | {"seen": seen} if body["finished"] else None

    return wait_until(finished, timeout, 0.5, lambda: f"task {status_url} not finished (saw {seen})")


def test_admin_sync_runs_in_dagster_and_the_image_is_then_served(dagster_stack: DagsterStack) -> None:
    with TestClient(create_app(dagster_stack.settings)) as client:
        before = client.get("/api/v1/images/series/777/poster/small")
        assert before.status_code == 404 and before.json()["details"]["artwork_status"] == "pending"

        launched = client.post("/api/v1/admin/sync/images/series/777", headers=ADMIN)
        assert launched.status_code == 202, launched.text
        accepted = launched.json()
        task_id = accepted["task_id"]
        assert uuid.UUID(task_id)
        assert accepted["job"] == "sync_content_item"
        assert accepted["status_url"] == f"/api/v1/admin/tasks/{task_id}" == launched.headers["location"]
        assert accepted["status"] in ("queued", "running")

        task = _wait_for_task(client, accepted["status_url"])
        assert task["status"] == "succeeded", dagster_stack.webserver.log_tail()
        assert task["dagster_status"] == "SUCCESS" and task["job"] == "sync_content_item"
        assert task["created_at"] <= task["started_at"] <= task["ended_at"]

        image = client.get("/api/v1/images/series/777/poster/small")
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(image.content)) as decoded:
            assert decoded.format == "WEBP"
            assert decoded.size == fit_inside(680, 1000, (640, 360))

        unknown = client.get(f"/api/v1/admin/tasks/{uuid.uuid4()}", headers=ADMIN)
        assert unknown.status_code == 404 and unknown.json()["code"] == "task_not_found"


def _graphql(stack: DagsterStack, query: str, **variables: str) -> dict:  # type: ignore[type-arg]
    client = DagsterClient(stack.graphql_url, timeout=30)
    try:
        return client.query(query, variables)
    finally:
        client.close()


def test_cleanup_and_missing_syncs_launch_runs(dagster_stack: DagsterStack) -> None:
    with TestClient(create_app(dagster_stack.settings)) as client:
        # One content type's partitions: Dagster takes 15-25 s just to launch a run over all 1,280.
        cleanup = client.post("/api/v1/admin/sync/images/cleanup?content_type=series", headers=ADMIN)
        missing = client.post("/api/v1/admin/sync/images/missing?content_type=series&limit=5", headers=ADMIN)
        assert cleanup.status_code == missing.status_code == 202, (cleanup.text, missing.text)
        assert cleanup.json()["job"] == "cleanup_orphans" and missing.json()["job"] == "sync_missing_artwork"
        cleanup_id = cleanup.json()["task_id"]

        # Dagster accepted the cleanup's run config and partition range; cancel it rather than wait for
        # 256 prefixes to be listed, which also shows a canceled run's task status.
        run = _graphql(
            dagster_stack,
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { runConfigYaml tags { key value } } } }",
            id=cleanup_id,
        )["runOrError"]
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == ("series|00", "series|ff")
        assert tags["tvdb_images/requested_by"] == "serving-api"
        assert "dry_run: true" in run["runConfigYaml"]
        terminated = _graphql(
            dagster_stack,
            "mutation($id: String!) { terminateRun(runId: $id, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY)"
            " { __typename } }",
            id=cleanup_id,
        )
        assert terminated["terminateRun"]["__typename"] == "TerminateRunSuccess"
        canceled = _wait_for_task(client, cleanup.json()["status_url"])
        assert (canceled["status"], canceled["dagster_status"]) == ("canceled", "CANCELED")

        task = _wait_for_task(client, missing.json()["status_url"])
        assert task["status"] == "succeeded", dagster_stack.webserver.log_tail()


def test_graphql_client_reports_what_dagster_refuses(dagster_stack: DagsterStack) -> None:
    client = DagsterClient(dagster_stack.graphql_url)
    try:
        with pytest.raises(DagsterError, match="run config"):
            client.launch_run("sync_content_item", {"ops": {"sync_content_item_op": {"config": {"x": 1}}}})
        with pytest.raises(DagsterUnavailable, match="not loaded"):
            client.launch_run("no_such_job", {})
        with pytest.raises(RunNotFound):
            client.run(str(uuid.uuid4()))
    finally:
        client.close()
