"""Download then render one scope (the single-item and missing-artwork jobs, the demo), or revalidate
then render it."""

from __future__ import annotations

import logging
from datetime import datetime

from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.repair import requeue_lost_objects
from tvdb_images.pipeline.report import StageReport
from tvdb_images.pipeline.revalidate import RevalidationReport, revalidate_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import ObjectStore, StorageError

log = logging.getLogger(__name__)


def sync_scope(
    catalog: Catalog,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    scope: Scope,
    *,
    limit: int | None = None,
) -> tuple[StageReport, StageReport]:
    queue.assign_all_missing_layout(catalog)  # rows inserted without a layout: placed first
    try:  # an item or partition scope: objects lost from storage are stored again by this very run
        requeue_lost_objects(catalog, store, scope)
    except StorageError as exc:
        log.warning("could not list storage to find lost objects: %s", exc)
    download = download_sources(catalog, store, fetcher, settings, scope, limit=limit)
    # Render what this run downloaded (and anything of the scope already waiting for renditions).
    render = render_stored_sources(catalog, store, settings, scope, limit=limit)
    return download, render


def revalidate_scope(
    catalog: Catalog,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    scope: Scope,
    *,
    checked_before: datetime | None,
) -> tuple[RevalidationReport, StageReport]:
    """Revalidate the scope's due sources, then render those that changed (what `revalidate_sources` runs)."""
    revalidated = revalidate_sources(catalog, store, fetcher, settings, scope, checked_before=checked_before)
    render = render_stored_sources(catalog, store, settings, scope)
    return revalidated, render
