"""Build test catalogs from an image corpus (the generated one, or the shared one) and settings for the
two setups (embedded, production)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images_tests.support.images.bad import BAD_CAUSES

# Corpus file -> (content type, image type) it stands for.
TVDB_FILES: dict[str, tuple[str, str]] = {
    "poster_a.jpg": ("series", "poster"),
    "poster_b.jpg": ("movies", "poster"),
    "poster_progressive.jpg": ("seasons", "poster"),
    "fanart_a.jpg": ("series", "fanart"),
    "fanart_b.jpg": ("movies", "fanart"),
    "fanart_c.jpg": ("series", "fanart"),
    "fanart_4k.jpg": ("movies", "fanart"),
    "banner_a.jpg": ("series", "banner"),
    "banner_b.jpg": ("series", "banner"),
    "episode_a.jpg": ("episodes", "image"),
    "episode_b.jpg": ("episodes", "image"),
    "person_a.jpg": ("people", "image"),
    "person_b.jpg": ("people", "image"),
    "clearlogo_a.png": ("series", "clearlogo"),
}

__all__ = ["BAD_CAUSES", "TVDB_FILES", "CatalogEntry", "CorpusCatalog", "corpus_entries"]


@dataclass
class CatalogEntry:
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    path: str  # path on the origin, e.g. "tvdb/poster_a.jpg"


@dataclass
class CorpusCatalog:
    entries: list[CatalogEntry] = field(default_factory=list)

    def by_path(self, path: str) -> list[CatalogEntry]:
        return [e for e in self.entries if e.path == path]

    def entry(self, artwork_id: int) -> CatalogEntry:
        return next(e for e in self.entries if e.artwork_id == artwork_id)


def corpus_entries(corpus: Path, *, include_edge: bool = True, include_bad: bool = True) -> CorpusCatalog:
    """One content item per corpus file, so each image is one artwork with its own storage prefix."""
    catalog = CorpusCatalog()
    artwork_id = 1000
    content_ids = {"series": 100, "movies": 200, "episodes": 300, "seasons": 400, "people": 500}

    def add(content_type: str, image_type: str, path: str) -> None:
        nonlocal artwork_id
        artwork_id += 1
        content_ids[content_type] += 1
        catalog.entries.append(
            CatalogEntry(artwork_id, content_type, content_ids[content_type], image_type, path)
        )

    for name, (content_type, image_type) in TVDB_FILES.items():
        add(content_type, image_type, f"tvdb/{name}")
    if include_edge:
        for file in sorted((corpus / "edge").iterdir()):
            add("people", "image", f"edge/{file.name}")
    if include_bad:
        for name in BAD_CAUSES:
            if (corpus / "bad" / name).is_file():  # the shared corpus has no BMP
                add("episodes", "image", f"bad/{name}")
    return catalog


def catalog_lines(catalog: CorpusCatalog, base_url: str) -> list[str]:
    lines = []
    for entry in catalog.entries:
        lines.append(
            json.dumps(
                {
                    "content_type": entry.content_type,
                    "id": entry.content_id,
                    "name": f"{entry.content_type} {entry.content_id}",
                    "artworks": [
                        {
                            "id": entry.artwork_id,
                            "type": entry.image_type,
                            "url": f"{base_url}/{entry.path}",
                            "language": "eng",
                            "score": 10,
                        }
                    ],
                }
            )
        )
    return lines


def import_entries(db: Catalog, catalog: CorpusCatalog, base_url: str) -> None:
    report = import_catalog_lines(db, catalog_lines(catalog, base_url))
    assert not report.errors, report.errors


def settings_for_origin(origin_netloc: str, **overrides: object) -> PipelineSettings:
    """Pipeline settings allowing exactly the test origin, with short timeouts and few retries."""
    values: dict[str, object] = {
        "ALLOWED_SOURCE_HOSTS": origin_netloc,
        "FETCH_MAX_RETRIES": 1,
        "FETCH_READ_TIMEOUT_SECONDS": 5,
        "FETCH_TOTAL_TIMEOUT_SECONDS": 10,
        "ARTWORK_MAX_ATTEMPTS": 3,
        "RENDER_WORKERS": 2,
    }
    values.update(overrides)
    return PipelineSettings.from_settings(Settings.model_validate(values))


def keys_under(store: ObjectStore, bucket: Bucket, prefix: str) -> list[str]:
    return sorted(obj.key for obj in store.list(bucket, prefix))
