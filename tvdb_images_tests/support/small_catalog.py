"""A small catalog whose images the test makes itself: a few items of a few content types, each with
one JPEG served by a loopback origin, so Dagster tests need nothing beside the checkout."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.partition_keys import partition_key
from tvdb_images.storage.layout import shard_of


@dataclass(frozen=True)
class Item:
    content_type: str
    content_id: int
    artwork_id: int

    @property
    def partition(self) -> str:
        return str(partition_key(self.content_type, shard_of(self.content_type, self.content_id)))

    @property
    def path(self) -> str:
        return f"/img/{self.content_type}-{self.content_id}.jpg"


def write_images(directory: Path, items: list[Item]) -> None:
    """One small JPEG per item, a different colour each, under `directory/img/`."""
    (directory / "img").mkdir(parents=True, exist_ok=True)
    for index, item in enumerate(items):
        buffer = io.BytesIO()
        Image.new("RGB", (400, 600), (40 * index % 256, 90, 160)).save(buffer, "JPEG", quality=80)
        (directory / item.path.lstrip("/")).write_bytes(buffer.getvalue())


def import_items(catalog: Catalog, items: list[Item], base_url: str) -> None:
    lines = [
        json.dumps(
            {
                "content_type": item.content_type,
                "id": item.content_id,
                "name": f"{item.content_type} {item.content_id}",
                "artworks": [{"id": item.artwork_id, "type": "image", "url": f"{base_url}{item.path}"}],
            }
        )
        for item in items
    ]
    report = import_catalog_lines(catalog, lines)
    assert not report.errors, report.errors


def make_items(
    content_type: str, count: int, *, first_id: int = 100, first_artwork: int = 5000
) -> list[Item]:
    return [Item(content_type, first_id + i, first_artwork + i) for i in range(count)]
