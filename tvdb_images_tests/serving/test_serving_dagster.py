"""The admin endpoints against a real `dagster-webserver` (support/dagster_stack.py, one per test
session): launch a sync of one content item through Dagster's GraphQL API, poll the task until the run
succeeds, then fetch the image it stored."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from serving.dagster_client import DagsterClient, DagsterError, DagsterUnavailable, RunNotFound
from serving.routes.admin import RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.imaging import fit_inside
from tvdb_images_tests.support.dagster_stack import DagsterStack
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN
from tvdb_images_tests.support.waiting import wait_until

pytestmark = pytest.mark.stack  # a real dagster-webserver; runs with the other stacks, not beside them
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _wait_for_task(client: TestClient, status_url: str, timeout: float = 50) -> dict:
    seen = []

    def finished() -> dict | None:
        task = client.get(status_url, headers=ADMIN)
        assert task.status_code == 200, task.text
        body = task.json()
        seen.append(body["status"])
        return body | {"seen": seen} if body["finished"] else None

    return wait_until(finished, timeout, 0.5, lambda: f"task {status_url} not finished (saw {seen})")


def test_admin_sync_runs_in_dagster_and_the_image_is_then_served(dagster_stack: DagsterStack) -> None:
    series = dagster_stack.new_item()
    with TestClient(create_app(dagster_stack.settings)) as client:
        before = client.get(f"/api/v1/images/series/{series}/poster/small")
        assert before.status_code == 404 and before.json()["details"]["artwork_status"] == "pending"

        launched = client.post(f"/api/v1/admin/sync/images/series/{series}", headers=ADMIN)
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

        image = client.get(f"/api/v1/images/series/{series}/poster/small")
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(image.content)) as decoded:
            assert decoded.format == "WEBP"
            assert decoded.size == fit_inside(680, 1000, (640, 360))

        unknown = client.get(f"/api/v1/admin/tasks/{uuid.uuid4()}", headers=ADMIN)
        assert unknown.status_code == 404 and unknown.json()["code"] == "task_not_found"


def _graphql(stack: DagsterStack, query: str, **variables: str) -> dict:
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
