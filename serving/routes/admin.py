"""Admin endpoints: launch the pipeline's Dagster jobs through Dagster's GraphQL API, report run status.

A task id is the Dagster run id, so an operator can open the same run in the Dagster UI.
Cleanup is one `cleanup_orphans` run over a partition range: every partition, or every shard of one
content type. It is a dry run unless `dry_run=false` is given.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from serving.dagster_client import DagsterError, DagsterUnavailable, RunNotFound
from serving.dependencies import Admin, CatalogSession, State, limit_sync_launches
from serving.errors import ApiError, error_responses
from serving.launches import IdempotencyKeyReused, Launch, LaunchInProgress, key_digest
from serving.links import task_path
from serving.routes.params import ContentId, ContentTypePath
from serving.schemas import ContentType, TaskAccepted, TaskInfo, TaskStatus
from serving.state import ServingState
from tvdb_images.catalog.references import content_item_exists
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images.storage.layout import SHARDS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

REQUESTED_BY_TAG = "tvdb_images/requested_by"

TASK_STATUS = {
    "QUEUED": TaskStatus.QUEUED,
    "NOT_STARTED": TaskStatus.QUEUED,
    "STARTING": TaskStatus.RUNNING,
    "STARTED": TaskStatus.RUNNING,
    "MANAGED": TaskStatus.RUNNING,
    "SUSPENDED": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
    "CANCELING": TaskStatus.CANCELING,
    "CANCELED": TaskStatus.CANCELED,
}
FINISHED = {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED}

_LAUNCH_RESPONSES = {
    202: {
        "description": "The run was launched, or (`Idempotent-Replayed: true`) an earlier request's run "
        "for the same key or the same still-pending work is returned; poll `status_url`."
    },
    **error_responses(401, 404, 409, 422, 429, 502, 503),
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any client-chosen token (visible ASCII, up to 255 characters): a retry with the same "
        "key gets the run the first request launched, never a second one. Without it, a request for "
        "work identical to a run still queued or running gets that run.",
    ),
]


@router.post(
    "/sync/images/missing",
    status_code=202,
    response_model=TaskAccepted,
    responses=_LAUNCH_RESPONSES,
)
def sync_missing(
    request: Request,
    response: Response,
    state: State,
    admin: Admin,
    content_type: Annotated[
        ContentType | None, Query(description="Only artwork of this content type.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many artworks.")] = 100,
    idempotency_key: IdempotencyKey = None,
) -> TaskAccepted:
    """Sync up to `limit` artworks that have no local copy (job `sync_missing_artwork`)."""
    limit_sync_launches(request, state, admin)
    config = {"content_type": content_type.value if content_type else None, "limit": limit}
    run_config = {"ops": {"sync_missing_artwork_op": {"config": config}}}
    launch = _launch(state, admin, idempotency_key, "sync_missing_artwork", run_config, {})
    return _accepted(response, launch)


@router.post(
    "/sync/images/cleanup",
    status_code=202,
    response_model=TaskAccepted,
    responses=_LAUNCH_RESPONSES,
)
def sync_cleanup(
    request: Request,
    response: Response,
    state: State,
    admin: Admin,
    dry_run: Annotated[bool, Query(description="Report orphans without deleting (the default).")] = True,
    grace_hours: Annotated[
        float | None,
        Query(ge=0, le=24 * 365, description="Keep orphans younger than this (default ORPHAN_GRACE_HOURS)."),
    ] = None,
    content_type: Annotated[
        ContentType | None, Query(description="Only this content type's partitions.")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> TaskAccepted:
    """Delete stored objects no catalog row references (job `cleanup_orphans`, one run over a range).

    Dagster takes a while to launch a run over many partitions (measured 16-24 s for all 1,280 on a
    busy 2-core machine, 2-4 s for a one-item sync); the call answers as soon as Dagster has created
    the run.
    """
    limit_sync_launches(request, state, admin)
    config: dict[str, Any] = {"dry_run": dry_run}
    if grace_hours is not None:
        config["grace_hours"] = grace_hours
    start, end = cleanup_partition_range(content_type.value if content_type else None)
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end}
    run_config = {"ops": {"orphaned_images": {"config": config}}}
    launch = _launch(state, admin, idempotency_key, "cleanup_orphans", run_config, tags)
    return _accepted(response, launch)


@router.post(
    "/sync/images/{content_type}/{content_id}",
    status_code=202,
    response_model=TaskAccepted,
    responses=_LAUNCH_RESPONSES,
)
def sync_item(
    response: Response,
    content_type: ContentTypePath,
    content_id: ContentId,
    request: Request,
    state: State,
    session: CatalogSession,
    admin: Admin,
    retry_failed: Annotated[bool, Query(description="Give failed and gone artwork a fresh attempt.")] = True,
    idempotency_key: IdempotencyKey = None,
) -> TaskAccepted:
    """Sync every artwork of one content item now (job `sync_content_item`)."""
    limit_sync_launches(request, state, admin)
    if not content_item_exists(session, content_type.value, content_id):
        raise ApiError(
            404,
            "content_not_found",
            f"the catalog has no {content_type.value} with id {content_id}",
            details={"content_type": content_type.value, "content_id": content_id},
        )
    config = {"content_type": content_type.value, "content_id": content_id, "retry_failed": retry_failed}
    run_config = {"ops": {"sync_content_item_op": {"config": config}}}
    launch = _launch(state, admin, idempotency_key, "sync_content_item", run_config, {})
    return _accepted(response, launch)


@router.get(
    "/tasks/{task_id}",
    response_model=TaskInfo,
    responses=error_responses(401, 404, 422, 502, 503),
)
def get_task(
    state: State,
    _admin: Admin,
    task_id: Annotated[
        str,
        Path(
            pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            description="The task id a sync endpoint returned (a Dagster run id).",
        ),
    ],
) -> TaskInfo:
    """A launched task's status, mapped from its Dagster run status (kept as `dagster_status`)."""
    try:
        run = state.dagster.run(task_id)
    except RunNotFound:
        raise ApiError(404, "task_not_found", f"no task {task_id}", parameter="task_id") from None
    except DagsterUnavailable as exc:
        raise _unavailable(exc) from exc
    except DagsterError as exc:
        raise ApiError(502, "dagster_error", str(exc)) from exc
    status = _task_status(run.status)
    return TaskInfo(
        task_id=run.run_id,
        job=run.job_name,
        status=status,
        dagster_status=run.status,
        finished=status in FINISHED,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
    )


def cleanup_partition_range(content_type: str | None) -> tuple[str, str]:
    """First and last partition key (`content_type|shard`, Dagster's order) of one or every content type."""
    types = [content_type] if content_type else sorted(ct.value for ct in ContentType)
    return partition_key(types[0], SHARDS[0]), partition_key(types[-1], SHARDS[-1])


def _launch(
    state: ServingState,
    admin: str,
    idempotency_key: str | None,
    job: str,
    run_config: dict[str, Any],
    tags: dict[str, str],
) -> Launch:
    key = key_digest(admin, idempotency_key) if idempotency_key else None
    try:
        return state.launcher.launch(
            job, run_config, {REQUESTED_BY_TAG: "serving-api", **tags}, idempotency_key=key
        )
    except IdempotencyKeyReused as exc:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
            parameter="Idempotency-Key",
            details={"task_id": str(exc)},
        ) from None
    except LaunchInProgress:
        raise ApiError(
            409,
            "launch_in_progress",
            "the same request is being launched; retry to get its task",
            headers={"Retry-After": "5"},
        ) from None
    except DagsterUnavailable as exc:
        raise _unavailable(exc) from exc
    except DagsterError as exc:
        raise ApiError(502, "dagster_error", str(exc)) from exc


def _unavailable(exc: Exception) -> ApiError:
    """The client learns that Dagster is down, not where it runs: the log keeps the detail."""
    log.warning("Dagster unavailable: %s", exc)
    return ApiError(
        503,
        "dagster_unavailable",
        "Dagster is not reachable or cannot take the request now",
        headers={"Retry-After": "30"},
    )


def _accepted(response: Response, launch: Launch) -> TaskAccepted:
    run = launch.run
    url = task_path(run.run_id)
    response.headers["Location"] = url
    response.headers["Cache-Control"] = "no-store"
    if launch.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return TaskAccepted(
        task_id=run.run_id,
        job=run.job_name,
        status=_task_status(run.status),
        dagster_status=run.status,
        status_url=url,
    )


def _task_status(dagster_status: str) -> TaskStatus:
    return TASK_STATUS.get(dagster_status, TaskStatus.RUNNING)
