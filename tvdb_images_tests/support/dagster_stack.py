"""A real `dagster-webserver` for the admin-launch tests (serving/test_serving_dagster.py and
reliability/test_reliability_launches.py), started once per test session (once per xdist worker).

The webserver loads the code location with `-m tvdb_images.definitions` from a temporary DAGSTER_HOME
whose instance launches runs at once (DefaultRunCoordinator) in a subprocess (DefaultRunLauncher), with
the production setup's environment: PostgreSQL catalog, SeaweedFS S3 storage. Loaded that way the
location is named `tvdb_images.definitions`, not `tvdb_images`, so the client's lookup of the job's
location is exercised as well.

Starting it takes half a minute, so the modules share one; they stay independent of each other's runs
because every test that syncs an item first imports one of its own (`DagsterStack.new_item`), never
seen by any other test's launch.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.dagster_client import JOB_LOCATIONS_QUERY
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.serving_data import base_values, catalog_lines, s3_values
from tvdb_images_tests.support.waiting import wait_until

INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
POSTER = "tvdb/poster_a.jpg"  # 680x1000
FIRST_CONTENT_ID = 777
STOP_GRACE_SECONDS = 5


@dataclass
class DagsterStack:
    settings: Settings
    graphql_url: str
    webserver: ManagedProcess
    origin: LoopbackOrigin
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_CONTENT_ID))

    def new_item(self, content_type: str = "series") -> int:
        """Import an item with one poster that no other test has touched; returns its content id.

        A test whose run it does not wait for takes another content type than `series`, whose missing
        artwork test_serving_dagster.py syncs."""
        content_id = next(self._ids)
        artwork = (content_id, 7001 + content_id - FIRST_CONTENT_ID, "poster", POSTER, "eng", 10)
        catalog = Catalog(self.settings.resolved_database_url)
        try:
            import_catalog_lines(catalog, catalog_lines([(content_type, *artwork)], self.origin))
        finally:
            catalog.dispose()
        return content_id


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
        0.25,
        lambda: f"code location not loaded:\n{webserver.log_tail()}",
        ignore=(httpx.HTTPError, KeyError, TypeError, ValueError),
    )


@contextmanager
def dagster_stack(
    root: Path, postgres_template: str, seaweedfs: services.SeaweedFS, corpus_dir: Path
) -> Iterator[DagsterStack]:
    """The webserver over a catalog database of its own (from the migrated template), stopped on exit."""
    name = services.unique_name("tvdb_images_dagster")
    database_url = services.create_database(name, template=postgres_template)
    port = free_port()
    graphql_url = f"http://127.0.0.1:{port}/graphql"
    try:
        with LoopbackOrigin(corpus_dir) as origin:
            values = (
                base_values(origin, database_url)
                | s3_values(seaweedfs, services.unique_name("dagster").replace("_", "-"))
                | {"DAGSTER_GRAPHQL_URL": graphql_url}
            )
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
                yield DagsterStack(Settings.model_validate(values), graphql_url, webserver, origin)
            finally:
                # Launches over every partition that a test gave up waiting for are still being
                # submitted, and the webserver drains them (then its code server) before it exits:
                # half a minute spent on runs nobody reads. Nothing is checked after this point.
                webserver.stop(timeout=STOP_GRACE_SECONDS)
    finally:
        services.drop_database(name)
