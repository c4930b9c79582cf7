"""storage_stats follows storage: the freshness sensor requests a refresh after every kind of change
(an asset sync, an orphan cleanup, an op-job sync) and none while the statistics are current."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import SIZES
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.small_catalog import import_items, make_items, write_images

ITEMS = make_items("movies", 2)


@pytest.fixture
def images(tmp_path: Path) -> Iterator[LoopbackOrigin]:
    write_images(tmp_path / "origin", ITEMS)
    with LoopbackOrigin(tmp_path / "origin") as origin:
        yield origin


@pytest.fixture
def settings(tmp_path: Path, sqlite_catalog: Catalog, images: LoopbackOrigin) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": sqlite_catalog.url,
            "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
            "ALLOWED_SOURCE_HOSTS": images.netloc,
            "FETCH_MAX_RETRIES": 0,
            "RENDER_WORKERS": 1,
        }
    )


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.RunRequest | None:
    sensor = defs.get_sensor_def("storage_stats_freshness")
    with dg.build_sensor_context(instance=instance) as context:
        result = sensor.evaluate_tick(context)
    assert len(result.run_requests or []) <= 1
    return result.run_requests[0] if result.run_requests else None


def _refresh(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dict:
    job = defs.resolve_job_def(request.job_name or "refresh_storage_stats")
    assert job.name == "refresh_storage_stats"
    assert job.execute_in_process(instance=instance, tags=request.tags).success
    record = instance.fetch_materializations(dg.AssetKey("storage_stats"), limit=1).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_storage_stats_refreshed_after_syncs_and_cleanups(
    settings: Settings, sqlite_catalog: Catalog, images: LoopbackOrigin
) -> None:
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert defs.get_sensor_def("storage_stats_freshness").default_status == dg.DefaultSensorStatus.RUNNING
    assert _tick(defs, instance) is None  # nothing stored yet

    # 1. A partition sync stores the first movie: one refresh is requested, then none.
    import_items(sqlite_catalog, ITEMS, images.url("").rstrip("/"))
    first = ITEMS[0]
    sync = defs.resolve_job_def("sync_images")
    assert sync.execute_in_process(instance=instance, partition_key=first.partition).success
    request = _tick(defs, instance)
    assert request is not None
    stats = _refresh(defs, instance, request)
    stored_per_item = len(SIZES) + 1  # renditions and the source
    assert stats["total_objects"] == stored_per_item * sum(i.partition == first.partition for i in ITEMS)
    assert _tick(defs, instance) is None

    # 2. The admin API's single-item sync (an op job, no asset) stores the second movie.
    second = ITEMS[1]
    config = {
        "ops": {
            "sync_content_item_op": {"config": {"content_type": "movies", "content_id": second.content_id}}
        }
    }
    assert (
        defs.resolve_job_def("sync_content_item")
        .execute_in_process(instance=instance, run_config=config)
        .success
    )
    after_item = _tick(defs, instance)
    assert after_item is not None and after_item.run_key != request.run_key
    assert _refresh(defs, instance, after_item)["total_objects"] == 2 * stored_per_item
    assert _tick(defs, instance) is None

    # 3. A cleanup that deletes an orphan changes storage too.
    store = store_from_settings(settings)
    with sqlite_catalog.session() as session:
        path = session.get(Artwork, first.artwork_id).storage_path
    store.put(Bucket.THUMBNAILS, f"{path}/999/large.webp", b"orphan", content_type="image/webp")
    cleanup = {"ops": {"orphaned_images": {"config": {"dry_run": False, "grace_hours": 0}}}}
    assert (
        defs.resolve_job_def("cleanup_orphans")
        .execute_in_process(instance=instance, partition_key=first.partition, run_config=cleanup)
        .success
    )
    assert store.head(Bucket.THUMBNAILS, f"{path}/999/large.webp") is None
    after_cleanup = _tick(defs, instance)
    assert after_cleanup is not None and after_cleanup.run_key not in {request.run_key, after_item.run_key}
    _refresh(defs, instance, after_cleanup)
    assert _tick(defs, instance) is None
