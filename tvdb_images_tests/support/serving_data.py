"""Data for the serving API tests, written by real pipeline runs on the two setups.

One catalog per setup for the whole test session (the tests only read it): the embedded one (SQLite +
local directory) and the production one (PostgreSQL + SeaweedFS S3). The artwork is chosen to exercise
the API:

- series 101 has four posters: the best-scored one's source is gone (404 at the origin), so the
  image URL must serve the best *stored* one, 5003 (score 50, English), not 5002 (score 50, French)
  nor 5001 (score 10); series 101 also has a fanart (1920x1080).
- people 301 (person_a.jpg) is rendered as WebP and then also as AVIF, for `Accept` negotiation.
- people 302 is an EXIF-rotated portrait (stored upright).
- movies 202 is stored with ENABLE_IMAGE_OPTIMIZATION=false: only its unchanged JPEG, as `original`.
- episodes 401 points at a truncated JPEG: it fails with cause `truncated`.
- seasons 501 is imported after the syncs: still `pending`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from fastapi.testclient import TestClient

from serving.app import create_app
from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.fetch import ImageFetcher
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, ObjectStore, store_from_settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import ManagedProcess, start_api_server

ADMIN_TOKEN = "serving-test-admin-token-0123456789"
UNREACHABLE_DAGSTER = "http://127.0.0.1:9/graphql"  # discard port: connection refused at once

# (content_type, content_id, artwork_id, image_type, origin path, language, score)
MAIN_ARTWORK: list[tuple[str, int, int, str, str, str | None, int]] = [
    ("series", 101, 5001, "poster", "tvdb/poster_a.jpg", "eng", 10),
    ("series", 101, 5002, "poster", "tvdb/poster_b.jpg", "fra", 50),
    ("series", 101, 5003, "poster", "tvdb/poster_progressive.jpg", "eng", 50),
    ("series", 101, 5004, "poster", "tvdb/no-such-poster.jpg", "eng", 100),
    ("series", 101, 5010, "fanart", "tvdb/fanart_c.jpg", "eng", 10),
    ("people", 301, 5030, "image", "tvdb/person_a.jpg", None, 10),
    ("people", 302, 5031, "image", "edge/Portrait_8.jpg", None, 10),
    ("episodes", 401, 5040, "image", "bad/truncated.jpg", "eng", 10),
]
MIRRORED = ("movies", 202, 5021, "poster", "tvdb/poster_b.jpg", "eng", 10)
PENDING = ("seasons", 501, 5050, "poster", "tvdb/poster_a.jpg", "eng", 10)
PRIMARY_POSTER = 5003
AVIF_ARTWORK = 5030


@dataclass
class ServedData:
    """A catalog and object store the pipeline has filled, with the settings that reach them."""

    name: str
    env: dict[str, str]  # the settings as the environment variables a server process reads
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    origin: LoopbackOrigin
    corpus_dir: Path


def catalog_lines(
    rows: list[tuple[str, int, int, str, str, str | None, int]], origin: LoopbackOrigin
) -> list[str]:
    items: dict[tuple[str, int], list[dict[str, object]]] = {}
    for content_type, content_id, artwork_id, image_type, path, language, score in rows:
        items.setdefault((content_type, content_id), []).append(
            {
                "id": artwork_id,
                "type": image_type,
                "url": origin.url(f"/{path}"),
                "language": language,
                "score": score,
            }
        )
    return [
        json.dumps({"content_type": ct, "id": cid, "name": f"{ct} {cid}", "artworks": artworks})
        for (ct, cid), artworks in items.items()
    ]


def base_values(origin: LoopbackOrigin, database_url: str) -> dict[str, object]:
    return {
        "DATABASE_URL": database_url,
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": 0,
        "RENDER_WORKERS": 2,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "DAGSTER_GRAPHQL_URL": UNREACHABLE_DAGSTER,
    }


def s3_values(seaweedfs: services.SeaweedFS, prefix: str) -> dict[str, str]:
    return seaweedfs.storage_values(f"{prefix}-originals", f"{prefix}-thumbnails")


def fill(
    settings: Settings, catalog: Catalog, origin: LoopbackOrigin, *, through_dagster: bool
) -> ObjectStore:
    """Import the catalog and run the pipeline over it, as operators do."""
    store = store_from_settings(settings)
    store.ensure_buckets()
    import_catalog_lines(catalog, catalog_lines(MAIN_ARTWORK, origin))
    pipeline = PipelineSettings.from_settings(settings)
    if through_dagster:
        defs = build_definitions(settings)
        job = defs.resolve_job_def("sync_images")
        instance = dg.DagsterInstance.ephemeral()
        with catalog.session() as session:
            partitions = queue.partitions_with_work(session, max_attempts=pipeline.max_attempts)
        for start, end in partition_ranges(partitions, chunk=256):
            result = job.execute_in_process(
                instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end}
            )
            assert result.success
    else:
        with ImageFetcher(pipeline.fetch) as fetcher:
            sync_scope(catalog, store, fetcher, pipeline, Scope())

    # The same person also as AVIF (IMAGE_FORMATS=webp,avif): AVIF renditions added, WebP ones kept.
    avif = PipelineSettings.from_settings(settings.model_copy(update={"image_formats": ["webp", "avif"]}))
    report = render_stored_sources(
        catalog, store, avif, Scope(artwork_ids=(AVIF_ARTWORK,)), include_stale=True
    )
    assert report.succeeded == 1, report.as_dict()

    # One poster stored as-is, with optimization off.
    import_catalog_lines(catalog, catalog_lines([MIRRORED], origin))
    mirror = PipelineSettings.from_settings(settings.model_copy(update={"enable_image_optimization": False}))
    with ImageFetcher(mirror.fetch) as fetcher:
        download, render = sync_scope(catalog, store, fetcher, mirror, Scope(artwork_ids=(MIRRORED[2],)))
    assert (download.succeeded, render.succeeded) == (1, 1)

    import_catalog_lines(catalog, catalog_lines([PENDING], origin))
    return store


class RecordingStore:
    """An object store that notes every key a request makes it touch, then does the real work."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.calls: list[tuple[str, Bucket, str]] = []

    def __getattr__(self, name: str):
        attribute = getattr(self.inner, name)
        if name not in ("open", "get", "head", "list", "put", "delete"):
            return attribute

        def recorded(bucket: Bucket, key, *args, **kwargs):
            self.calls.append((name, bucket, str(key)))
            return attribute(bucket, key, *args, **kwargs)

        return recorded


@contextmanager
def serve(
    data: ServedData, tmp_path: Path, extra_env: dict[str, str] | None = None, *, args: Sequence[str] = ()
) -> Iterator[tuple[int, ManagedProcess]]:
    """A real `tvdb-images serve` on a free loopback port for the data, stopped on exit."""
    env = {**os.environ, **data.env, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    name = f"serve-{len(list(tmp_path.glob('serve-*.log')))}"
    process, port = start_api_server(name, env, cwd=tmp_path, log_dir=tmp_path, extra_args=args, timeout=120)
    try:
        yield port, process
    finally:
        process.stop()


@contextmanager
def api(data: ServedData, store: Any = None, **settings: Any) -> Iterator[TestClient]:
    """The API in process on `data` (or on `store` in its place), with `settings` changed for the test."""
    app = create_app(
        data.settings.model_copy(update=settings), catalog=data.catalog, store=store or data.store
    )
    with TestClient(app) as client:
        yield client
