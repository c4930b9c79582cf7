"""Refusal causes as a sync records them, for inputs generated here and served over loopback: a GIF
whose frame extends far beyond its logical screen, and a PNG whose only fault is a text bomb."""

from __future__ import annotations

import json
from pathlib import Path

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.download import download_sources
from tvdb_images.storage import Bucket
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.builders import settings_for_origin
from tvdb_images_tests.support.hostile_inputs import gif_with_frame, png_with_text_chunk
from tvdb_images_tests.support.origins import LoopbackOrigin, respond


def test_a_sync_records_the_specific_cause_and_stores_nothing(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    inputs = {
        1: ("/frame-beyond-screen.gif", gif_with_frame((16, 16), (20000, 20000), before=1), "image/gif"),
        2: ("/text-bomb.png", png_with_text_chunk(b"zTXt", b"A" * 3_000_000), "image/png"),
    }
    with LoopbackOrigin() as origin:
        for path, body, mime in inputs.values():
            origin.route(path, respond(200, body, {"Content-Type": mime}))
        line = {
            "content_type": "series",
            "id": 7,
            "artworks": [
                {"id": artwork_id, "type": "fanart", "url": origin.url(path)}
                for artwork_id, (path, _, _) in inputs.items()
            ],
        }
        import_catalog_lines(sqlite_catalog, [json.dumps(line)])
        settings = settings_for_origin(origin.netloc)
        with ImageFetcher(settings.fetch) as fetcher:
            report = download_sources(sqlite_catalog, store, fetcher, settings, Scope())
    assert report.failed == 2
    with sqlite_catalog.session() as session:
        gif, png = session.get(Artwork, 1), session.get(Artwork, 2)
        assert (gif.status, gif.failure_cause) == ("failed", "too_many_pixels")
        assert "MAX_IMAGE_PIXELS" in gif.failure_detail and "178,956,970" not in gif.failure_detail
        assert (png.status, png.failure_cause) == ("failed", "metadata_too_large")
    assert not list(store.list(Bucket.ORIGINALS, "series/"))
