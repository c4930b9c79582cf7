"""Small builders the reliability tests share: one-partition catalogs and production settings."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dagster as dg

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import partition_key
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.services import SeaweedFS


@dataclass(frozen=True)
class CatalogItem:
    """One content item with one artwork, whose source is `url`."""

    content_type: str
    content_id: int
    artwork_id: int
    url: str
    image_type: str = "image"

    def line(self) -> str:
        return json.dumps(
            {
                "content_type": self.content_type,
                "id": self.content_id,
                "artworks": [{"id": self.artwork_id, "type": self.image_type, "url": self.url}],
            }
        )


def same_shard_ids(content_type: str, count: int, *, start: int = 1) -> tuple[str, list[int]]:
    """`count` content ids that all fall in one shard: one Dagster partition, one storage prefix."""
    first = shard_of(content_type, start)
    ids: Iterator[int] = (i for i in itertools.count(start) if shard_of(content_type, i) == first)
    return first, list(itertools.islice(ids, count))


def one_partition_items(
    content_type: str, urls: Sequence[str], *, first_artwork_id: int = 1
) -> list[CatalogItem]:
    _, ids = same_shard_ids(content_type, len(urls))
    return [
        CatalogItem(content_type, content_id, first_artwork_id + index, url)
        for index, (content_id, url) in enumerate(zip(ids, urls, strict=True))
    ]


def import_items(catalog: Catalog, items: Sequence[CatalogItem]) -> None:
    report = import_catalog_lines(catalog, [item.line() for item in items])
    assert not report.errors, report.errors


def production_settings(
    database_url: str, seaweedfs: SeaweedFS, buckets: dict[Bucket, str], **overrides: object
) -> Settings:
    """PostgreSQL catalog + SeaweedFS S3 storage, with whatever the test overrides."""
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        **seaweedfs.storage_values(buckets[Bucket.ORIGINALS], buckets[Bucket.THUMBNAILS]),
        "RENDER_WORKERS": 2,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def run_sync_images(settings: Settings, content_type: str, shard: str) -> dg.ExecuteInProcessResult:
    """The `sync_images` job over one partition, as the nightly schedule or a backfill would run it."""
    job = build_definitions(settings).resolve_job_def("sync_images")
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=str(partition_key(content_type, shard))
    )
