"""The catalog after its first sync, shared by the removal and command-line tests: a small catalog of
generated images on a loopback origin, synced on the embedded default (SQLite + local disk) or on
production parts (PostgreSQL + SeaweedFS), and helpers that read back rows and stored objects.

Its fixtures (`life_origin`, `life`, `life_cli`) are in catalog/conftest.py."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy import func, select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.builders import settings_for_origin
from tvdb_images_tests.support.origins import LoopbackOrigin

# (content_type, content_id) -> [(artwork_id, image_type, score)]
ITEMS: dict[tuple[str, int], list[tuple[int, str, int]]] = {
    ("series", 1): [(101, "poster", 10), (102, "fanart", 10), (103, "fanart", 5)],
    ("series", 2): [(201, "poster", 10)],
    ("movies", 3): [(301, "poster", 10)],
}
BAD_ARTWORK = 401  # people/4: an HTML page, refused as unsupported_format
SETUP_NAMES = {"embedded": "SQLite + local disk", "production": "PostgreSQL + SeaweedFS"}


@dataclass
class Setup:
    catalog: Catalog
    store: ObjectStore
    origin: LoopbackOrigin
    name: str


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96 + seed % 7, 64), ((seed * 37) % 256, (seed * 91) % 256, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


def catalog_lines(
    origin: LoopbackOrigin, items: dict[tuple[str, int], list[tuple[int, str, int]]]
) -> list[str]:
    lines = []
    for (content_type, content_id), artworks in items.items():
        record = {
            "content_type": content_type,
            "id": content_id,
            "name": f"{content_type} {content_id}",
            "artworks": [
                {"id": a, "type": kind, "url": origin.url(f"/{a}.jpg"), "score": score}
                for a, kind, score in artworks
            ],
        }
        lines.append(json.dumps(record))
    return lines


def sync(setup: Setup) -> None:
    settings = settings_for_origin(setup.origin.netloc)
    with ImageFetcher(settings.fetch) as fetcher:
        download_sources(setup.catalog, setup.store, fetcher, settings, Scope())
    render_stored_sources(setup.catalog, setup.store, settings, Scope())


def synced(setup: Setup, *, with_bad: bool = False) -> None:
    items = dict(ITEMS)
    if with_bad:
        items[("people", 4)] = [(BAD_ARTWORK, "image", 1)]
    report = import_catalog_lines(setup.catalog, catalog_lines(setup.origin, items))
    assert not report.errors
    sync(setup)


def all_keys(store: ObjectStore) -> dict[tuple[Bucket, str], int]:
    keys: dict[tuple[Bucket, str], int] = {}
    for bucket in Bucket:
        for prefix in ("series/", "movies/", "people/"):
            keys.update({(bucket, o.key): o.size for o in store.list(bucket, prefix)})
    return keys


def objects_of(store: ObjectStore, storage_paths: list[str]) -> dict[tuple[Bucket, str], int]:
    return {k: v for k, v in all_keys(store).items() if k[1].rsplit("/", 1)[0] in storage_paths}


def cleanup_orphans_later(setup: Setup, *, dry_run: bool):
    partitions = sorted({(t, shard_of(t, i)) for t, i in ITEMS})
    later = datetime.now(UTC) + timedelta(days=2)
    return clean_orphans(
        setup.catalog, setup.store, partitions, grace=timedelta(hours=1), dry_run=dry_run, now=later
    )


def statuses_of(catalog: Catalog) -> dict[int, str]:
    with catalog.session() as session:
        return dict(session.execute(select(Artwork.id, Artwork.status)).all())


def count_status(statuses: dict[int, str], status: str) -> int:
    return sum(value == status for value in statuses.values())


def rendition_rows(catalog: Catalog, artwork_ids: list[int]) -> int:
    with catalog.session() as session:
        query = select(func.count()).select_from(ArtworkRendition)
        return session.scalar(query.where(ArtworkRendition.artwork_id.in_(artwork_ids))) or 0
