"""Orphan cleanup running alongside a sync, as a hypothesis property.

Hypothesis drives a small catalog (two artworks in one partition) through interleavings of what a
sync does (write a source or renditions, then record them in the catalog, possibly much later or
never, as when a run is killed), URL changes from a catalog import (which change a source's format,
so old keys become orphans and may later be written again), the passing of time, and orphan cleanup
with a grace period. Sync steps are also injected *inside* a cleanup, between its phases: after it
has listed the objects, and after it has read the catalog's references.

The property, checked at every delete and after every step:
  * cleanup never deletes an object that the catalog references at the moment of the delete;
  * cleanup never deletes an object written less than the grace period ago;
  * every key the catalog references exists in storage.

Object ages come from a virtual clock (the store wrapper stamps each write), so hours pass in
microseconds; everything else is the real catalog code, the real cleanup and a real store: SQLite and
the local store for the long run, PostgreSQL and SeaweedFS S3 for a shorter one.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tvdb_images.catalog import queue, references, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import original_key, rendition_key
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images.storage.s3 import S3ObjectStore
from tvdb_images_tests.support.examples import examples
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import CatalogItem, import_items, same_shard_ids
from tvdb_images_tests.support.virtual_clock_store import START, VirtualClockStore

GRACE = timedelta(hours=1)
SOURCES = ("jpeg", "png")  # a URL change may switch an artwork's source format, and back
RENDER_FORMATS = ("webp", "avif")  # so may a settings change for renditions
SIZES = ("original", "thumbnail")  # two sizes are enough to show the interleavings
ARTWORKS = 2


@dataclass
class Pending:
    """Objects a sync has written and not yet recorded."""

    artwork: int
    kind: str  # "source" | "renditions"
    written_at: datetime
    source_format: str | None = None
    render_format: str | None = None
    checksum: str = ""


@dataclass
class Model:
    catalog: Catalog
    raw_store: ObjectStore
    artworks: list[int]
    now: datetime = START
    pending: list[Pending] = field(default_factory=list)
    injected: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    deleted: int = 0
    store: VirtualClockStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = VirtualClockStore(self.raw_store, self)

    # -- what a catalog import does -------------------------------------------------------------

    def change_url(self, index: int, source: str) -> None:
        artwork = self.artworks[index]
        with self.catalog.session() as session:
            row = session.get(Artwork, artwork)
            content_id = row.content_id
        url = (
            f"https://artworks.thetvdb.com/banners/{artwork}-{source}.{'jpg' if source == 'jpeg' else 'png'}"
        )
        import_items(self.catalog, [CatalogItem("series", content_id, artwork, url)])

    # -- what a sync does: write objects, record them later ----------------------------------------

    def download(self, index: int) -> None:
        artwork = self.artworks[index]
        with self.catalog.session() as session:
            row = session.get(Artwork, artwork)
            if row.status != ArtworkStatus.PENDING.value:
                return
            source = "jpeg" if row.source_url.endswith(".jpg") else "png"
            path, url = row.storage_path, row.source_url
        data = f"{url}".encode()
        self.store.put(Bucket.ORIGINALS, original_key(path, source), data, content_type="image/jpeg")
        checksum = hashlib.sha256(data).hexdigest()
        self.pending.append(Pending(artwork, "source", self.now, source_format=source, checksum=checksum))

    def render(self, index: int, render_format: str) -> None:
        artwork = self.artworks[index]
        with self.catalog.session() as session:
            row = session.get(Artwork, artwork)
            if row.status not in (ArtworkStatus.DOWNLOADED.value, ArtworkStatus.PROCESSED.value):
                return
            path = row.storage_path
        for size in SIZES:
            key = rendition_key(path, size, render_format)
            self.store.put(Bucket.THUMBNAILS, key, b"rendition", content_type=f"image/{render_format}")
        self.pending.append(Pending(artwork, "renditions", self.now, render_format=render_format))

    def record_next(self) -> None:
        """The oldest write of a still-running sync reaches the catalog."""
        if not self.pending:
            return
        done = self.pending.pop(0)
        with self.catalog.session() as session:
            row = session.get(Artwork, done.artwork)
            if done.kind == "source":
                results.record_download(
                    session,
                    done.artwork,
                    checksum=done.checksum,
                    source_format=done.source_format or "jpeg",
                    width=10,
                    height=10,
                    size=10,
                )
                return
            if row.source_format is None or row.source_checksum is None:
                return  # a render of a source replaced meanwhile: the real stage records nothing either
            task = queue.RenderTask(
                row.id,
                row.content_type,
                row.content_id,
                row.image_type,
                row.storage_path,
                row.source_format,
                row.source_checksum,
            )
            renditions = [
                results.StoredRendition(
                    size=size,
                    format=done.render_format or "webp",
                    storage_key=rendition_key(row.storage_path, size, done.render_format or "webp"),
                    url="https://cdn.invalid/x",
                    width=1,
                    height=1,
                    bytes=9,
                    content_type="image/webp",
                    checksum="0" * 64,
                )
                for size in SIZES
            ]
            results.record_renditions(session, task, renditions, signature=f"{done.render_format}-test")

    def tick(self, minutes: int) -> None:
        """Time passes. A sync never sits on a write longer than the grace period: one that would has
        died (a killed run), and its writes are never recorded: they are orphans cleanup may take."""
        self.now += timedelta(minutes=minutes)
        self.pending = [p for p in self.pending if self.now - p.written_at < GRACE - timedelta(minutes=1)]

    # -- cleanup, with sync steps injected between its phases ---------------------------------------

    def cleanup(self, after_listing: list[tuple[Any, ...]], before_deleting: list[tuple[Any, ...]]) -> None:
        self.injected = {"after listing": after_listing, "before deleting": before_deleting}
        self.store.start_cleanup()
        with self.catalog.session() as session:
            shards = {row.shard for row in session.scalars(select(Artwork))}
        report = clean_orphans(
            self.catalog,
            self.store,
            [("series", s) for s in shards],
            grace=GRACE,
            dry_run=False,
            now=self.now,
        )
        self.deleted += report.deleted
        self.injected = {}

    def run_injected(self, point: str) -> None:
        for step in self.injected.pop(point, []):
            self.apply(step)

    def check_delete(self, bucket: Bucket, key: str) -> None:
        referenced = self.referenced()
        if key in referenced[bucket]:
            self.violations.append(f"deleted {bucket.value}/{key}, which the catalog references")
        written = self.store.written.get((bucket, key))
        if written is not None and self.now - written < GRACE:
            self.violations.append(f"deleted {bucket.value}/{key}, written {self.now - written} ago")

    def referenced(self) -> dict[Bucket, set[str]]:
        refs: dict[Bucket, set[str]] = {Bucket.ORIGINALS: set(), Bucket.THUMBNAILS: set()}
        with self.catalog.session() as session:
            for shard in {row.shard for row in session.scalars(select(Artwork))}:
                originals, thumbnails = references.referenced_keys(session, "series", shard)
                refs[Bucket.ORIGINALS] |= originals
                refs[Bucket.THUMBNAILS] |= thumbnails
        return refs

    def check_catalog_points_at_stored_objects(self) -> None:
        for bucket, keys in self.referenced().items():
            for key in keys:
                if self.raw_store.head(bucket, key) is None:
                    self.violations.append(f"the catalog references {bucket.value}/{key}, which is gone")

    def apply(self, step: tuple[Any, ...]) -> None:
        name, *args = step
        getattr(self, name)(*args)


# -- strategies ------------------------------------------------------------------------------------

artwork_index = st.integers(0, ARTWORKS - 1)
sync_step = st.one_of(
    st.tuples(st.just("download"), artwork_index),
    st.tuples(st.just("render"), artwork_index, st.sampled_from(RENDER_FORMATS)),
    st.tuples(st.just("record_next")),
    st.tuples(st.just("change_url"), artwork_index, st.sampled_from(SOURCES)),
)
injected = st.lists(sync_step, max_size=4)
step = st.one_of(
    sync_step,
    st.tuples(st.just("tick"), st.sampled_from([5, 30, 59, 61, 120])),
    st.tuples(st.just("cleanup"), injected, injected),
)
scenarios = st.lists(step, min_size=1, max_size=25)


# -- the catalog and store each example starts from ------------------------------------------------


def _reset(catalog: Catalog, store: ObjectStore) -> list[int]:
    with catalog.session() as session:
        session.execute(delete(ArtworkRendition))
        session.execute(delete(Artwork))
        session.execute(delete(CONTENT_MODELS["series"]))
    for bucket in Bucket:
        keys = [obj.key for obj in store.list(bucket, "")]
        if keys:
            store.delete(bucket, keys)
    _, ids = same_shard_ids("series", ARTWORKS)
    items = [
        CatalogItem("series", content_id, 100 + n, f"https://artworks.thetvdb.com/banners/{100 + n}-jpeg.jpg")
        for n, content_id in enumerate(ids)
    ]
    import_items(catalog, items)
    return [item.artwork_id for item in items]


def _run(catalog: Catalog, store: ObjectStore, steps: list[tuple[Any, ...]]) -> Model:
    model = Model(catalog, store, _reset(catalog, store))
    for scenario_step in steps:
        model.apply(scenario_step)
        model.check_catalog_points_at_stored_objects()
        assert model.violations == [], (model.violations, steps)
    return model


class Tally:
    def __init__(self) -> None:
        self.examples = 0
        self.steps = 0
        self.cleanups = 0
        self.deleted = 0

    def add(self, model: Model, steps: list[tuple[Any, ...]]) -> None:
        self.examples += 1
        self.steps += len(steps)
        self.cleanups += sum(1 for s in steps if s[0] == "cleanup")
        self.deleted += model.deleted


def _publish(tally: Tally, backend: str) -> None:
    record(
        "cleanup_property",
        backend=backend,
        examples=tally.examples,
        steps=tally.steps,
        cleanups=tally.cleanups,
        objects_deleted=tally.deleted,
        violations=0,
    )


HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


def test_cleanup_alongside_a_sync_never_deletes_what_it_must_keep(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    tally = Tally()

    @settings(max_examples=examples(default=100, soak=300), **HYPOTHESIS)
    @given(steps=scenarios)
    def check(steps: list[tuple[Any, ...]]) -> None:
        tally.add(_run(sqlite_catalog, store, steps), steps)

    check()
    shutil.rmtree(tmp_path / "storage", ignore_errors=True)
    _publish(tally, "SQLite + local store")


@pytest.mark.slow
def test_cleanup_property_on_postgresql_and_s3(postgres_catalog: Catalog, s3_store: S3ObjectStore) -> None:
    tally = Tally()

    @settings(max_examples=examples(default=15, soak=30), **HYPOTHESIS)
    @given(steps=scenarios)
    def check(steps: list[tuple[Any, ...]]) -> None:
        tally.add(_run(postgres_catalog, s3_store, steps), steps)

    check()
    _publish(tally, "PostgreSQL + SeaweedFS S3")
