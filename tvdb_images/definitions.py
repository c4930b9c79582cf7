"""The code location: one `Definitions` for `dagster dev`, the code server and the demo."""

from __future__ import annotations

import gc

import dagster as dg

from tvdb_images.config import Settings, load_settings
from tvdb_images.defs.assets import ARTWORK_ASSETS
from tvdb_images.defs.checks import ARTWORK_CHECKS
from tvdb_images.defs.jobs import ALL_JOBS
from tvdb_images.defs.kinds import with_backend_kinds
from tvdb_images.defs.resources import resources_from_settings
from tvdb_images.defs.schedules import ALL_SCHEDULES
from tvdb_images.defs.sensors import ALL_SENSORS


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All definitions, with resources configured from `settings` (default: env vars and `.env`)."""
    settings = settings or load_settings()
    return dg.Definitions(
        assets=with_backend_kinds(ARTWORK_ASSETS, settings),
        asset_checks=ARTWORK_CHECKS,
        jobs=ALL_JOBS,
        schedules=ALL_SCHEDULES,
        sensors=ALL_SENSORS,
        resources=resources_from_settings(settings),
        # A run's steps depend on each other and share one catalog engine: running them in one process
        # saves a process start per step (about 40 s per backfill run) and costs no parallelism.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
gc.freeze()  # the code location lives as long as its process (see tvdb_images/__init__.py)
