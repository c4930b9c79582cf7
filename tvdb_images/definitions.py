"""The code location: one `Definitions` for `dagster dev`, the code server and the demo."""

from __future__ import annotations

import gc

import dagster as dg

from tvdb_images.config import Settings, load_settings
from tvdb_images.defs.assets import ARTWORK_ASSETS
from tvdb_images.defs.checks import ARTWORK_CHECKS
from tvdb_images.defs.dedup_report import DEDUP_ASSETS, DEDUP_JOBS, DEDUP_SCHEDULES
from tvdb_images.defs.jobs import ALL_JOBS
from tvdb_images.defs.kinds import with_backend_kinds
from tvdb_images.defs.resources import resources_from_settings
from tvdb_images.defs.revalidation import REVALIDATION_ASSETS, REVALIDATION_JOBS, REVALIDATION_SCHEDULES
from tvdb_images.defs.schedules import ALL_SCHEDULES
from tvdb_images.defs.sensors import ALL_SENSORS
from tvdb_images.defs.stale_checks import STALE_CHECKS
from tvdb_images.defs.views import VIEW_ASSETS, VIEW_CHECKS, VIEW_JOBS, VIEW_SCHEDULES
from tvdb_images.preflight import check_s3_credentials, check_watermark


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All definitions, with resources configured from `settings` (default: env vars and `.env`).

    S3 without credentials stops the code location's load with one message naming the settings, rather
    than failing every run; reachability is left to the runs (a server may come up after the load).
    A bad WATERMARK_IMAGE stops the load the same way (and each run's start, `ImagePipelineResource`)."""
    settings = settings or load_settings()
    check_s3_credentials(settings)
    check_watermark(settings)
    return dg.Definitions(
        assets=with_backend_kinds(
            ARTWORK_ASSETS + REVALIDATION_ASSETS + VIEW_ASSETS + DEDUP_ASSETS, settings
        ),
        asset_checks=ARTWORK_CHECKS + STALE_CHECKS + VIEW_CHECKS,
        jobs=[*ALL_JOBS, *REVALIDATION_JOBS, *VIEW_JOBS, *DEDUP_JOBS],
        schedules=[*ALL_SCHEDULES, *REVALIDATION_SCHEDULES, *VIEW_SCHEDULES, *DEDUP_SCHEDULES],
        sensors=ALL_SENSORS,
        resources=resources_from_settings(settings),
        # A run's steps depend on each other and share one catalog engine: running them in one process
        # saves a process start per step (about 40 s per backfill run) and costs no parallelism.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
gc.freeze()  # the code location lives as long as its process (see tvdb_images/__init__.py)
