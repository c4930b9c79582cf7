"""A catalog for the manifest tests, written by a real sync on PostgreSQL + SeaweedFS S3: one wide
fanart (2400x1350, so every fit-in size has its own width: 300, 640, 1280, 1920 and 2400) stored in
AVIF and WebP with one crop, and one small poster (200x300) whose sizes collapse onto few widths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import store_from_settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.images.subjects import encoded, subject_picture
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.serving_data import ServedData, base_values, catalog_lines, s3_values

WIDE = 9301  # series 931's fanart, 2400x1350
SMALL = 9302  # series 932's poster, 200x300
CROPS = "card:342x513"
# Widths the sync stores for the wide fanart: each size's box fitted to 16:9, never upscaled.
WIDE_WIDTHS = {"original": 2400, "large": 1920, "medium": 1280, "small": 640, "thumbnail": 300}


@contextmanager
def responsive_data(
    root: Path, postgres_template: str, seaweedfs: services.SeaweedFS
) -> Iterator[ServedData]:
    pictures = root / "origin"
    pictures.mkdir(parents=True)
    (pictures / "wide.jpg").write_bytes(
        encoded(subject_picture((2400, 1350), (1500, 600), 380, noisy=False).image, "JPEG")
    )
    (pictures / "small.png").write_bytes(
        encoded(subject_picture((200, 300), (100, 120), 60, noisy=False).image)
    )
    name = services.unique_name("tvdb_images_manifest")
    url = services.create_database(name, template=postgres_template)
    catalog = Catalog(url)
    try:
        with LoopbackOrigin(pictures) as origin:
            prefix = services.unique_name("manifest").replace("_", "-")
            values = (
                base_values(origin, url)
                | s3_values(seaweedfs, prefix)
                | {"IMAGE_FORMATS": "webp,avif", "CROP_RENDITIONS": CROPS}
            )
            settings = Settings.model_validate(values)
            store = store_from_settings(settings)
            store.ensure_buckets()
            rows = [
                ("series", 931, WIDE, "fanart", "wide.jpg", "eng", 10),
                ("series", 932, SMALL, "poster", "small.png", "eng", 10),
            ]
            import_catalog_lines(catalog, catalog_lines(rows, origin))
            pipeline = PipelineSettings.from_settings(settings)
            with ImageFetcher(pipeline.fetch) as fetcher:
                download, render = sync_scope(catalog, store, fetcher, pipeline, Scope())
            assert (download.succeeded, render.succeeded) == (2, 2)
            env = {key: str(value) for key, value in values.items()}
            yield ServedData("responsive", env, settings, catalog, store, origin, pictures)
    finally:
        catalog.dispose()
        services.drop_database(name)
