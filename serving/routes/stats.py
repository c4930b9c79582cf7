"""`GET /api/v1/images/storage/stats`: objects and bytes stored, from the catalog or (admin) recounted."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from serving.dependencies import CatalogSession, State, check_admin
from serving.errors import ApiError, error_responses
from serving.recount import DEFAULT_MAX_OBJECTS, recount_storage
from serving.schemas import (
    GroupTotal,
    OriginalCount,
    RenditionCount,
    StatusCount,
    StorageStatsResponse,
)
from tvdb_images.catalog.stats import StorageStats, storage_stats

router = APIRouter(prefix="/api/v1/images/storage", tags=["stats"])

_MB = 1024 * 1024
STATS_CACHE_SECONDS = 30


@router.get(
    "/stats",
    response_model=StorageStatsResponse,
    responses=error_responses(401, 409, 422, 503),
)
def get_storage_stats(
    request: Request,
    response: Response,
    state: State,
    session: CatalogSession,
    recount: Annotated[
        bool,
        Query(
            description="Admin only (Bearer token): count by listing the buckets instead of from the "
            "catalog. S3 lists 1,000 keys a request: about 3,000 objects/s on SeaweedFS, 8,000/s on a "
            "local directory (measured on a 2-core machine).",
        ),
    ] = False,
    max_objects: Annotated[
        int,
        Query(ge=1, le=10_000_000, description="Recount: stop after listing this many objects."),
    ] = DEFAULT_MAX_OBJECTS,
) -> StorageStatsResponse:
    """Totals (`total_objects`, `total_size_mb`) and breakdowns by content type and size.

    From the catalog: a few grouped queries, shared by all callers for 30 s (`computed_at` says when
    they ran), so the endpoint is cheap to poll. Renditions and the unchanged sources in the originals
    bucket both count as objects. Artwork counts by status and failures by cause always come from the
    catalog.
    """
    started = time.perf_counter()
    # The catalog totals are shared for 30 s anyway; a recount is one admin's, never to be cached.
    response.headers["Cache-Control"] = "no-store" if recount else f"public, max-age={STATS_CACHE_SECONDS}"
    if recount:
        check_admin(request, state)
    catalog_stats, computed_at = state.stats_cache.get(lambda: storage_stats(session))
    counted = catalog_stats
    truncated, unrecognized = False, 0
    if recount:
        if not state.recount_lock.acquire(blocking=False):
            raise ApiError(
                409, "recount_in_progress", "a storage recount is already running; try again later"
            )
        try:
            result = recount_storage(state.store, max_objects=max_objects, crops=state.settings.crop_names)
        finally:
            state.recount_lock.release()
        counted, truncated, unrecognized = result.stats, result.truncated, result.unrecognized
        computed_at = datetime.now(UTC)
    return _response(
        counted,
        catalog_stats,
        counted_from="storage" if recount else "catalog",
        truncated=truncated,
        unrecognized=unrecognized,
        computed_at=computed_at,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _response(
    counted: StorageStats,
    catalog_stats: StorageStats,
    *,
    counted_from: str,
    truncated: bool,
    unrecognized: int,
    computed_at: datetime,
    elapsed_ms: float,
) -> StorageStatsResponse:
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in counted.renditions:
        for group in (by_type[row["content_type"]], by_size[row["size"]]):
            group[0] += row["objects"]
            group[1] += row["bytes"]
    for row in counted.originals:
        for group in (by_type[row["content_type"]], by_size["source"]):
            group[0] += row["objects"]
            group[1] += row["bytes"]
    return StorageStatsResponse(
        total_objects=counted.total_objects,
        total_size_mb=counted.total_size_mb,
        total_bytes=counted.total_bytes,
        by_content_type={key: _total(*value) for key, value in sorted(by_type.items())},
        by_size={key: _total(*value) for key, value in by_size.items()},
        renditions=[RenditionCount(**row) for row in counted.renditions],
        originals=[OriginalCount(**row) for row in counted.originals],
        artwork_by_status=[StatusCount(**row) for row in catalog_stats.artwork_by_status],
        failures_by_cause=catalog_stats.failures_by_cause,
        shared_renditions=catalog_stats.shared_renditions,
        bytes_saved_by_deduplication=catalog_stats.bytes_saved_by_dedup,
        near_shared_renditions=catalog_stats.near_shared_renditions,
        bytes_saved_by_near_deduplication=catalog_stats.bytes_saved_by_near_dedup,
        counted_from=counted_from,
        truncated=truncated,
        unrecognized_objects=unrecognized,
        computed_at=computed_at,
        elapsed_ms=round(elapsed_ms, 2),
    )


def _total(objects: int, size_bytes: int) -> GroupTotal:
    return GroupTotal(objects=objects, bytes=size_bytes, size_mb=round(size_bytes / _MB, 3))
