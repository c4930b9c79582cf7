"""The real services a benchmark runs against, started here and stopped by the ids started here.

SeaweedFS (`weed mini`, S3 on free loopback ports), a fresh PostgreSQL database on the machine's
server (migrated with Alembic, dropped afterwards), and an origin process serving the image corpus
over loopback HTTP (`python -m http.server`), so that downloads cost what they cost over a network
stack without taking the benchmark's own GIL.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import Settings
from tvdb_images.storage import Bucket
from tvdb_images_tests.support import services
from tvdb_images_tests.support.builders import TVDB_FILES, CatalogEntry, CorpusCatalog, catalog_lines
from tvdb_images_tests.support.corpus import CORPUS_DIR
from tvdb_images_tests.support.processes import ManagedProcess, free_port

BUCKETS = {Bucket.ORIGINALS: "bench-originals", Bucket.THUMBNAILS: "bench-thumbnails"}


@dataclass
class Stack:
    database_url: str
    database_name: str
    seaweedfs: services.SeaweedFS
    origin_url: str
    work_dir: Path

    @property
    def origin_netloc(self) -> str:
        return self.origin_url.split("://", 1)[1]

    def settings(self, **extra: object) -> Settings:
        values: dict[str, object] = {
            "DATABASE_URL": self.database_url,
            **self.seaweedfs.storage_values(BUCKETS[Bucket.ORIGINALS], BUCKETS[Bucket.THUMBNAILS]),
            "TVDB_IMAGES_DATA_DIR": str(self.work_dir / "data"),
        }
        if self.origin_url:
            values["ALLOWED_SOURCE_HOSTS"] = self.origin_netloc
        values.update(extra)
        return Settings.model_validate(values)

    def env(self, **extra: object) -> dict[str, str]:
        """The same settings as environment variables, for processes started from here."""
        settings = self.settings(**extra)
        env = {
            "DATABASE_URL": self.database_url,
            **self.seaweedfs.storage_values(settings.s3_bucket_originals, settings.s3_bucket_thumbnails),
            "TVDB_IMAGES_DATA_DIR": str(self.work_dir / "data"),
        }
        if self.origin_url:
            env["ALLOWED_SOURCE_HOSTS"] = self.origin_netloc
        env.update({key: str(value) for key, value in extra.items()})
        return env

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.database_url)


@contextmanager
def running_stack(prefix: str, *, with_origin: bool = True) -> Iterator[Stack]:
    """SeaweedFS + a fresh migrated PostgreSQL database (+ the corpus origin) for the block."""
    with ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix=f"{prefix}-")))
        name = services.unique_name(prefix)
        url = services.create_database(name)
        cleanup.callback(services.drop_database, name)
        migrate.upgrade(url)
        seaweedfs = services.start_seaweedfs(work_dir / "seaweedfs")
        cleanup.callback(seaweedfs.stop)
        origin_url = ""
        if with_origin:
            port = free_port()
            origin = ManagedProcess(
                "origin",
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(CORPUS_DIR),
                    str(port),
                ],
                log_dir=work_dir,
            ).start()
            cleanup.callback(origin.stop)
            origin.wait_port(port)
            origin_url = f"http://127.0.0.1:{port}"
        yield Stack(url, name, seaweedfs, origin_url, work_dir)


def corpus_catalog_lines(origin_url: str, artworks: int, *, first_id: int = 1) -> list[str]:
    """`artworks` catalog items, one artwork each, cycling through the `tvdb/` corpus files.

    Every artwork has its own URL (a query string that the origin ignores), content id and so its
    own storage prefix, spread over all shards as a real catalog's ids are.
    """
    files = list(TVDB_FILES.items())
    catalog = CorpusCatalog()
    for index in range(artworks):
        name, (content_type, image_type) = files[index % len(files)]
        artwork_id = first_id + index
        path = f"tvdb/{name}?copy={artwork_id}"
        catalog.entries.append(
            CatalogEntry(artwork_id, content_type, 1_000_000 + artwork_id, image_type, path)
        )
    return catalog_lines(catalog, origin_url)


def import_corpus_catalog(catalog: Catalog, origin_url: str, artworks: int) -> None:
    report = import_catalog_lines(catalog, corpus_catalog_lines(origin_url, artworks))
    if report.errors:
        raise RuntimeError(f"catalog import failed: {report.errors[:3]}")
