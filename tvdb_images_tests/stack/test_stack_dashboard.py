"""The monitoring files in deploy/: the alert rules and Prometheus config pass `promtool`, and every
PromQL expression of the Grafana dashboard returns data from a real Prometheus scraping a real
`tvdb-images serve` and the Pushgateway that real Dagster sync and cleanup runs pushed to."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml

from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images_tests.support.builders import CorpusCatalog, corpus_entries, import_entries
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import start_api_server
from tvdb_images_tests.support.prometheus_stack import prometheus_stack, require_binaries
from tvdb_images_tests.support.stack import REPO_ROOT

pytestmark = pytest.mark.stack

DEPLOY = REPO_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "tvdb-images.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMTOOL = "/usr/bin/promtool"
_METRIC = re.compile(r"\b(tvdb_images_[a-z_]+)")


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, expr) of every query of the dashboard, read from its JSON."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def alert_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_config_and_the_alert_rules() -> None:
    require_binaries()
    for command in (
        ["check", "rules", str(ALERTS)],
        ["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
    ):
        result = subprocess.run([PROMTOOL, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(alert_expressions()) >= 3


def test_every_metric_of_the_dashboard_and_alerts_is_documented() -> None:
    operations = (REPO_ROOT / "docs" / "operations.md").read_text()
    names = {
        m for _title, expr in dashboard_expressions() + alert_expressions() for m in _METRIC.findall(expr)
    }
    names = {re.sub(r"_(bucket|total)$", "", name) for name in names}
    assert names and {name for name in names if f"`{name}" not in operations} == set()


def _sync_and_clean(settings: Settings, catalog: Catalog) -> tuple[list[str], str]:
    """The sync job over each range of partitions with work (one run each, as the demo and the
    backfills split them) and a cleanup dry run; the sync run ids and the cleanup's."""
    with catalog.session() as session:
        partitions = sorted(queue.partitions_with_work(session, max_attempts=5))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("sync_images")
    run_ids = []
    for start, end in partition_ranges(partitions, chunk=256, max_gap=8):
        result = job.execute_in_process(instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})
        assert result.success
        run_ids.append(result.run_id)
    cleanup = defs.resolve_job_def("cleanup_orphans").execute_in_process(
        instance=instance,
        partition_key=str(partition_key(*partitions[0])),
        run_config={"ops": {"orphaned_images": {"config": {"dry_run": True, "grace_hours": 0}}}},
    )
    assert cleanup.success
    return run_ids, cleanup.run_id


def _traffic(base_url: str, entries: CorpusCatalog) -> None:
    """Each good artwork's medium image twice (a miss, then a cache hit), plus the popular list."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for entry in entries.entries:
            if entry.path.startswith("bad/"):
                continue
            path = f"/api/v1/images/{entry.content_type}/{entry.content_id}/{entry.image_type}/medium"
            for _ in range(2):
                assert client.get(path).status_code == 200, path
        assert client.get("/api/v1/images/stats/popular").status_code == 200


def test_every_dashboard_query_returns_data(
    tmp_path: Path, postgres_catalog: Catalog, origin: LoopbackOrigin, corpus_dir: Path
) -> None:
    require_binaries()
    everything = corpus_entries(corpus_dir, include_edge=False)
    good = [e for e in everything.entries if not e.path.startswith("bad/")][:6]
    bad = [e for e in everything.entries if e.path.startswith("bad/")][:2]
    entries = CorpusCatalog(good + bad)
    import_entries(postgres_catalog, entries, origin.url("").rstrip("/"))
    values: dict[str, str] = {
        "DATABASE_URL": postgres_catalog.url,
        "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": "0",
        "RENDER_WORKERS": "2",
        "CATALOG_METRICS_SECONDS": "1",
        "VIEW_FLUSH_SECONDS": "0.5",
    }
    env = {**os.environ, **values, "PYTHONUNBUFFERED": "1"}
    server, port = start_api_server("tvdb-images-serve", env, cwd=tmp_path, log_dir=tmp_path, timeout=120)
    try:
        with prometheus_stack(tmp_path / "prometheus", targets=[f"127.0.0.1:{port}"]) as stack:
            settings = Settings.model_validate(values | {"PROMETHEUS_PUSHGATEWAY_URL": stack.pushgateway_url})
            run_ids, cleanup_id = _sync_and_clean(settings, postgres_catalog)
            assert len(run_ids) >= 2  # the content types' partitions are apart: several runs
            _traffic(f"http://127.0.0.1:{port}", entries)
            prometheus = stack.prometheus
            # Each run is its own group: every sync run's download figures are there side by side.
            pushed = prometheus.wait_for(
                'count by (run_id) (tvdb_images_pipeline_elapsed_seconds{stage="download"})',
                predicate=lambda result: len(result) == len(run_ids),
            )
            assert {r["metric"]["run_id"] for r in pushed} == set(run_ids)
            prometheus.wait_for(f'tvdb_images_cleanup_objects{{run_id="{cleanup_id}"}}')
            # The bad sources failed, at download or at render, and their causes were pushed.
            prometheus.wait_for("sum(tvdb_images_pipeline_artworks_failed) > 0")
            empty: dict[str, Any] = {}
            for title, expr in dashboard_expressions():
                try:
                    prometheus.wait_for(expr, timeout=60)
                except TimeoutError as exc:
                    empty[title] = f"{expr}: {exc}"
            assert empty == {}, empty
            # The alert rules name only metrics Prometheus now has.
            names = set(
                httpx.get(f"{prometheus.url}/api/v1/label/__name__/values", timeout=10).json()["data"]
            )
            used = {m for _alert, expr in alert_expressions() for m in _METRIC.findall(expr)}
            assert used - names == set()
            top = prometheus.query("topk(1, tvdb_images_popular_artwork_views)")
            assert float(top[0]["value"][1]) >= 2
    finally:
        server.stop()
