"""The Dagster steps push their reports (PROMETHEUS_PUSHGATEWAY_URL): a real Pushgateway gets each
run's group under its run id, and one that is down leaves the run successful with a warning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.pipeline.metrics_push import JOB
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import free_port
from tvdb_images_tests.support.prometheus_stack import pushgateway


def _settings(tmp_path: Path, catalog: Catalog, origin: LoopbackOrigin, gateway: str) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": catalog.url,
            "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "FETCH_MAX_RETRIES": 0,
            "PROMETHEUS_PUSHGATEWAY_URL": gateway,
        }
    )


def _import(catalog: Catalog, origin: LoopbackOrigin) -> None:
    """One movie with a good poster and one its origin answers 404 for."""
    artworks = [
        {"id": 310, "type": "poster", "url": origin.url("/tvdb/poster_b.jpg")},
        {"id": 311, "type": "poster", "url": origin.url("/tvdb/no_such_poster.jpg")},
    ]
    import_catalog_lines(catalog, [json.dumps({"content_type": "movies", "id": 31, "artworks": artworks})])


def _sync(settings: Settings, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    result = defs.resolve_job_def("sync_content_item").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config={
            "ops": {"sync_content_item_op": {"config": {"content_type": "movies", "content_id": 31}}}
        },
    )
    assert result.success
    return result


def test_a_sync_pushes_its_run_to_the_pushgateway(
    tmp_path: Path, sqlite_catalog: Catalog, origin: LoopbackOrigin
) -> None:
    _import(sqlite_catalog, origin)
    with pushgateway(tmp_path / "pushgateway") as url:
        result = _sync(_settings(tmp_path, sqlite_catalog, origin, url))
        text = httpx.get(f"{url}/metrics", timeout=5).text
    samples = {
        (s.name, s.labels.get("stage"), s.labels.get("cause")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("job") == JOB and s.labels.get("run_id") == result.run_id
    }
    assert samples[("tvdb_images_pipeline_artworks_succeeded", "download", None)] == 1
    failed = {
        cause: v
        for (name, stage, cause), v in samples.items()
        if name.endswith("_failed") and stage == "download"
    }
    assert sum(failed.values()) == 1 and len(failed) > 1  # the 404, and a 0 for every other cause
    assert samples[("tvdb_images_pipeline_artworks_succeeded", "render", None)] == 1
    assert samples[("tvdb_images_pipeline_elapsed_seconds", "render", None)] > 0


def test_a_pushgateway_that_is_down_leaves_the_run_successful(
    tmp_path: Path, sqlite_catalog: Catalog, origin: LoopbackOrigin
) -> None:
    _import(sqlite_catalog, origin)
    settings = _settings(tmp_path, sqlite_catalog, origin, f"http://127.0.0.1:{free_port()}")
    instance = dg.DagsterInstance.ephemeral()
    result = _sync(settings, instance)
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "not pushed to the Pushgateway" in entry.user_message
    ]
    assert len(warnings) == 2, warnings  # the download's and the render's
