"""Admin launches against a real `dagster-webserver` (support/dagster_stack.py): a retried
request never starts a second run, and a slow launch is answered with the run it created, never a 503.
Each case is recorded for docs/reliability.md (section "The serving API at its edges")."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.dagster_client import DagsterClient
from serving.launches import IDEMPOTENCY_TAG, REQUEST_TAG
from tvdb_images_tests.support.dagster_stack import DagsterStack
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN

pytestmark = pytest.mark.stack  # a real dagster-webserver; runs with the other stacks, not beside them
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

CLEANUP_ALL = "/api/v1/admin/sync/images/cleanup"


def _graphql(stack: DagsterStack, query: str, **variables: Any) -> dict[str, Any]:
    client = DagsterClient(stack.graphql_url, timeout=60)
    try:
        return client.query(query, variables)
    finally:
        client.close()


def _runs_tagged(stack: DagsterStack, key: str, value: str) -> list[str]:
    data = _graphql(
        stack,
        "query($f: RunsFilter!) { runsOrError(filter: $f) { ... on Runs { results { runId } } } }",
        f={"tags": [{"key": key, "value": value}]},
    )
    return [run["runId"] for run in data["runsOrError"]["results"]]


def _run_tags(stack: DagsterStack, run_id: str) -> dict[str, str]:
    data = _graphql(
        stack, "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }", id=run_id
    )
    return {tag["key"]: tag["value"] for tag in data["runOrError"]["tags"]}


def _terminate(stack: DagsterStack, run_id: str) -> None:
    _graphql(
        stack,
        "mutation($id: String!) { terminateRun(runId: $id, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY)"
        " { __typename } }",
        id=run_id,
    )


def test_a_retry_with_the_same_idempotency_key_gets_the_same_run(dagster_stack: DagsterStack) -> None:
    movie = dagster_stack.new_item("movies")  # its run is not awaited: not a series (see new_item)
    sync = f"/api/v1/admin/sync/images/movies/{movie}"
    key = {"Idempotency-Key": f"sync-{movie}-{uuid.uuid4()}"}
    with TestClient(create_app(dagster_stack.settings.model_copy(update={"admin_sync_burst": 50}))) as client:
        first = client.post(sync, headers={**ADMIN, **key})
        retries = [client.post(sync, headers={**ADMIN, **key}) for _ in range(3)]
        other_work = client.post(f"{sync}?retry_failed=false", headers={**ADMIN, **key})
    assert first.status_code == 202, first.text
    run_id = first.json()["task_id"]
    tag = _run_tags(dagster_stack, run_id)[IDEMPOTENCY_TAG]
    runs = _runs_tagged(dagster_stack, IDEMPOTENCY_TAG, tag)
    record(
        "serving_edge",
        item=2,
        case="one Idempotency-Key, 4 requests (3 retries), then the key with other parameters",
        observed=f"{[r.status_code for r in (first, *retries)]}, "
        f"{len({r.json()['task_id'] for r in (first, *retries)})} task id, {len(runs)} Dagster run with "
        f"the key; other parameters: {other_work.status_code}",
    )
    assert all(r.status_code == 202 and r.json()["task_id"] == run_id for r in retries)
    assert all(r.headers["idempotent-replayed"] == "true" for r in retries)
    assert "idempotent-replayed" not in first.headers
    assert runs == [run_id]
    assert other_work.status_code == 422 and other_work.json()["code"] == "idempotency_key_reused"


def test_identical_pending_requests_without_a_key_share_one_run(dagster_stack: DagsterStack) -> None:
    """Two clients (or one retrying after a timeout) send the same cleanup at once."""
    settings = dagster_stack.settings.model_copy(update={"admin_sync_burst": 50})
    answers: list[httpx.Response] = []
    with TestClient(create_app(settings)) as client:

        def post() -> None:
            answers.append(client.post(f"{CLEANUP_ALL}?content_type=series&grace_hours=5", headers=ADMIN))

        threads = [threading.Thread(target=post) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = {answer.json().get("task_id") for answer in answers}
    statuses = sorted(answer.status_code for answer in answers)
    run_id = next(iter(ids))
    work = _run_tags(dagster_stack, run_id)[REQUEST_TAG]
    runs = _runs_tagged(dagster_stack, REQUEST_TAG, work)
    for run in runs:
        _terminate(dagster_stack, run)
    record(
        "serving_edge",
        item=2,
        case="3 identical cleanup requests at once, no key",
        observed=f"{statuses}, {len(ids)} task id, {len(runs)} Dagster run for that work",
    )
    assert statuses == [202, 202, 202] and len(ids) == 1
    assert runs == [run_id]


def test_a_slow_launch_answers_with_the_run_it_created(dagster_stack: DagsterStack) -> None:
    """Dagster takes seconds to launch a run over every partition; the client here gives the launch
    call one second. Before, that answered 503 while the run was created and ran anyway."""
    client_side = DagsterClient(dagster_stack.graphql_url, launch_timeout=1.0)
    settings = dagster_stack.settings.model_copy(update={"admin_sync_burst": 50})
    try:
        with TestClient(create_app(settings, dagster=client_side)) as client:
            answer = client.post(f"{CLEANUP_ALL}?grace_hours=7", headers=ADMIN)
    finally:
        client_side.close()
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["task_id"]
    work = _run_tags(dagster_stack, run_id)[REQUEST_TAG]
    runs = _runs_tagged(dagster_stack, REQUEST_TAG, work)
    for run in runs:
        _terminate(dagster_stack, run)
    record(
        "serving_edge",
        item=2,
        case="cleanup over all 1,280 partitions with a 1 s launch timeout",
        observed=f"{answer.status_code}, Dagster runs for that work: {len(runs)}",
    )
    assert runs == [run_id]
