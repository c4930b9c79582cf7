"""Sensor and schedule ticks only read the catalog; what a run needs written first, its first step writes.

A tick may be evaluated again after a daemon restart, or its run requests dropped as duplicates: none of
that may change a row. Checked on SQLite and PostgreSQL, with a row a proxy inserted without a layout
(what the sensor used to place during the tick).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus, Base
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.resources import resources_from_settings
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images.storage import layout
from tvdb_images_tests.support.origins import LoopbackOrigin


def _snapshot(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every catalog table, in primary-key order."""
    with catalog.session() as session:
        return {
            table.name: [
                tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def _ranges(requests: list[dg.RunRequest]) -> set[tuple[str, str]]:
    return {(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests}


def test_ticks_leave_the_catalog_unchanged(
    tmp_path: Path, any_catalog: Catalog, origin: LoopbackOrigin
) -> None:
    settings = Settings.model_validate(
        {
            "DATABASE_URL": any_catalog.url,
            "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "FETCH_MAX_RETRIES": 0,
        }
    )
    line = {
        "content_type": "series",
        "id": 41,
        "artworks": [{"id": 410, "type": "poster", "url": origin.url("/tvdb/poster_a.jpg")}],
    }
    import_catalog_lines(any_catalog, [json.dumps(line)])
    with any_catalog.session() as session:  # inserted by a proxy: no shard or storage path yet
        session.add(
            Artwork(
                id=420,
                content_type="people",
                content_id=42,
                image_type="image",
                source_url=origin.url("/tvdb/person_b.jpg"),
            )
        )
    before = _snapshot(any_catalog)
    assert before["artwork"] and before["series"]

    defs = build_definitions(settings)
    resources = resources_from_settings(settings)
    instance = dg.DagsterInstance.ephemeral()
    tick = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        sensed = defs.get_sensor_def("catalog_changes_sensor")(context)
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=sensed.cursor) as context:
        assert isinstance(defs.get_sensor_def("catalog_changes_sensor")(context), dg.SkipReason)
    scheduled: dict[str, list[dg.RunRequest]] = {}
    for name in ("nightly_sync", "weekly_cleanup", "daily_source_revalidation"):
        with dg.build_schedule_context(resources=resources, scheduled_execution_time=tick) as context:
            scheduled[name] = list(defs.get_schedule_def(name).evaluate_tick(context).run_requests or [])
    assert _snapshot(any_catalog) == before

    # The row without a layout still counts, in the partition its item hashes to.
    people = partition_key("people", layout.shard_of("people", 42))
    series = partition_key("series", layout.shard_of("series", 41))
    assert _ranges(sensed.run_requests) == {(series, series), (people, people)}
    assert _ranges(scheduled["nightly_sync"]) == {(series, series), (people, people)}
    assert scheduled["weekly_cleanup"]

    # The requested run's first step places the row, then the run syncs it.
    sync = defs.resolve_job_def("sync_images")
    for request in sensed.run_requests:
        assert sync.execute_in_process(instance=instance, tags=request.tags).success
    with any_catalog.session() as session:
        placed = session.get(Artwork, 420)
        assert placed is not None
        assert placed.storage_path == layout.artwork_storage_path("people", 42, "image", None)
        assert placed.shard == layout.shard_of("people", 42)
        assert placed.status == ArtworkStatus.PROCESSED
