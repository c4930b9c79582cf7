"""Orphan cleanup alongside syncs that share renditions, as a hypothesis property.

The cleanup property of test_reliability_cleanup.py, with what exact deduplication adds: sources whose
bytes depend only on a variant ("a" or "b"), so artworks in two partitions often have identical sources;
a render that shares a recorded donor's renditions instead of writing (the real `dedup.find_donor` and
`sharing.record_shared`), or hands shared objects over before writing its own keys (the real
`dedup.release_own_keys`); URL changes, and removals followed by a re-import that gives the artwork's
storage path (whose objects others may still share) to a fresh row. Sync steps are injected inside
cleanup, after its listing and before its deletes.

With DEDUP_NEAR_DUPLICATES on, a third variant ("c") is the same picture as "a" in other bytes (its
perceptual hash two bits from a's): `near_fold` steps (the real `fold_near_duplicates`, also injected
inside cleanup) point such a cluster's members at its best member's renditions, so rows name objects
rendered from other source bytes, which hand-overs, URL changes, removals and cleanup must respect too.

Checked at every delete and after every step:
  * cleanup never deletes an object any row names at that moment, nor one younger than the grace;
  * every key any row names exists;
  * every rendition row of an artwork with no render in flight names an object holding exactly the
    bytes its checksum says: a URL change of one member of a shared set leaves the others intact.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tvdb_images.catalog import results, sharing
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.removal import Removal, remove
from tvdb_images.pipeline import dedup
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.near_fold import fold_near_duplicates
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import original_key, rendition_key, shard_of
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images.storage.s3 import S3ObjectStore
from tvdb_images_tests.support.examples import examples
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import CatalogItem, import_items, same_shard_ids
from tvdb_images_tests.support.virtual_clock_store import START, VirtualClockStore

GRACE = timedelta(hours=1)
VARIANTS = ("a", "b", "c")  # "c": the picture of "a" in other bytes (a near-duplicate)
# The perceptual hash each variant's render records (signed, as stored): c two bits from a, b far.
PHASHES = {"a": 0x0F0F_0F0F_3333_5555, "b": 0x7070_7070_CCCC_2AAA, "c": 0x0F0F_0F0F_3333_5556}
PHASH_OF = {hashlib.sha256(f"source-{v}.jpg".encode()).hexdigest(): h for v, h in PHASHES.items()}
SIZES = ("original", "thumbnail")
SIGNATURE = "webp-test"


@dataclass
class Pending:
    artwork: int
    kind: str  # "source" | "renditions" | "shared"
    written_at: datetime
    checksum: str = ""
    task: RenderTask | None = None
    renditions: tuple[results.StoredRendition, ...] = ()
    donor: int = 0


@dataclass
class Model:
    catalog: Catalog
    raw_store: ObjectStore
    items: list[CatalogItem]
    now: datetime = START
    pending: list[Pending] = field(default_factory=list)
    injected: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    deleted: int = 0
    shares: int = 0
    hand_overs: int = 0
    blocked: int = 0
    near_folded: int = 0
    store: VirtualClockStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = VirtualClockStore(self.raw_store, self)

    def _row(self, index: int) -> Artwork | None:
        with self.catalog.session() as session:
            row = session.get(Artwork, self.items[index].artwork_id)
            if row is not None:
                session.expunge(row)
            return row

    # -- imports and removals --------------------------------------------------------------------

    def change_url(self, index: int, variant: str) -> None:
        item = self.items[index]
        url = f"https://artworks.thetvdb.com/banners/{item.artwork_id}-{variant}.jpg"
        import_items(self.catalog, [replace(item, url=url)])  # re-creates a removed artwork, same path

    def remove(self, index: int) -> None:
        with self.catalog.session() as session:
            remove(session, Removal(artwork_ids=frozenset({self.items[index].artwork_id})))

    # -- a sync: write objects now, record them later ------------------------------------------------

    def download(self, index: int) -> None:
        row = self._row(index)
        if row is None or row.status != ArtworkStatus.PENDING.value:
            return
        data = f"source-{row.source_url.rsplit('-', 1)[1]}".encode()  # the variant's bytes
        self.store.put(
            Bucket.ORIGINALS, original_key(row.storage_path, "jpeg"), data, content_type="image/jpeg"
        )
        self.pending.append(Pending(row.id, "source", self.now, checksum=hashlib.sha256(data).hexdigest()))

    def render(self, index: int) -> None:
        row = self._row(index)
        if row is None or row.status != ArtworkStatus.DOWNLOADED.value or self._rendering(row.id):
            return
        task = RenderTask(
            row.id,
            row.content_type,
            row.content_id,
            row.image_type,
            row.storage_path,
            "jpeg",
            row.source_checksum,
            source_url=row.source_url,
        )
        try:  # as RunShares.render_once: hand over first, whether it then shares or renders
            self.hand_overs += dedup.release_own_keys(self.catalog, self.store, task)
        except dedup.HandOverBlocked:
            self.blocked += 1  # as the render stage: a retryable failure, nothing written
            return
        donor = dedup.find_donor(self.catalog, task, SIGNATURE)
        if donor is not None:
            self.pending.append(Pending(row.id, "shared", self.now, task=task, donor=donor))
            return
        stored = []
        for size in SIZES:
            key = rendition_key(row.storage_path, size, "webp")
            data = f"{row.source_checksum}-{size}".encode()
            self.store.put(Bucket.THUMBNAILS, key, data, content_type="image/webp")
            stored.append(
                results.StoredRendition(
                    size,
                    "webp",
                    key,
                    f"https://cdn.invalid/{key}",
                    1,
                    1,
                    len(data),
                    "image/webp",
                    hashlib.sha256(data).hexdigest(),
                )
            )
        self.pending.append(Pending(row.id, "renditions", self.now, task=task, renditions=tuple(stored)))

    def sync(self, index: int) -> None:
        """A whole sync of one artwork that nothing interrupts: download, record, render, record."""
        for name in ("download", "record_all", "render", "record_all"):
            getattr(self, name)(*(() if name == "record_all" else (index,)))

    def new_source(self, index: int, variant: str = "") -> None:
        """The artwork's URL changes to `variant`'s (another one's if it is the current one), and a
        sync stores it."""
        row = self._row(index)
        current = "a" if row is None else row.source_url.rsplit("-", 1)[1].removesuffix(".jpg")
        if variant in ("", current):
            variant = "b" if current == "a" else "a"
        self.change_url(index, variant)
        self.sync(index)

    def record_all(self) -> None:
        while self.pending:
            self.record_next()

    def _rendering(self, artwork: int) -> bool:
        return any(p.artwork == artwork and p.kind != "source" for p in self.pending)

    def record_next(self) -> None:
        if not self.pending:
            return
        done = self.pending.pop(0)
        with self.catalog.session() as session:
            if done.kind == "source":
                results.record_download(
                    session,
                    done.artwork,
                    checksum=done.checksum,
                    source_format="jpeg",
                    width=1,
                    height=1,
                    size=8,
                )
            elif done.kind == "shared" and done.task is not None:
                self.shares += sharing.record_shared(session, done.task, done.donor, signature=SIGNATURE)
            elif done.task is not None:
                placeholders = results.StoredPlaceholders(
                    "thumbhash", "blurhash", "#000000", PHASH_OF[done.task.source_checksum]
                )
                results.record_renditions(
                    session, done.task, done.renditions, signature=SIGNATURE, placeholders=placeholders
                )
            results.refresh_content_local_urls(session, [(i.content_type, i.content_id) for i in self.items])

    def near_fold(self) -> None:
        """DEDUP_NEAR_DUPLICATES: every near-duplicate cluster served from its best member."""
        self.near_folded += fold_near_duplicates(self.catalog, self.store).folded

    def tick(self, minutes: int) -> None:
        """A sync never holds a write past the grace period: one that would has died, unrecorded."""
        self.now += timedelta(minutes=minutes)
        self.pending = [p for p in self.pending if self.now - p.written_at < GRACE - timedelta(minutes=1)]

    # -- cleanup with injected steps ----------------------------------------------------------------

    def cleanup(self, after_listing: list[tuple[Any, ...]], before_deleting: list[tuple[Any, ...]]) -> None:
        self.injected = {"after listing": after_listing, "before deleting": before_deleting}
        self.store.start_cleanup()
        partitions = sorted({(i.content_type, shard_of(i.content_type, i.content_id)) for i in self.items})
        report = clean_orphans(self.catalog, self.store, partitions, grace=GRACE, dry_run=False, now=self.now)
        self.deleted += report.deleted
        self.injected = {}

    def run_injected(self, point: str) -> None:
        for step in self.injected.pop(point, []):
            self.apply(step)

    # -- the property ------------------------------------------------------------------------------

    def named(self) -> dict[Bucket, set[str]]:
        """Ground truth, read straight from the rows: every key any artwork names."""
        with self.catalog.session() as session:
            thumbnails = set(session.scalars(select(ArtworkRendition.storage_key)))
            originals = {
                original_key(path, fmt)
                for path, fmt in session.execute(
                    select(Artwork.storage_path, Artwork.source_format).where(
                        Artwork.source_format.isnot(None)
                    )
                )
            }
        return {Bucket.ORIGINALS: originals, Bucket.THUMBNAILS: thumbnails}

    def check_delete(self, bucket: Bucket, key: str) -> None:
        if key in self.named()[bucket]:
            self.violations.append(f"deleted {bucket.value}/{key}, which a row names")
        written = self.store.written.get((bucket, key))
        if written is not None and self.now - written < GRACE:
            self.violations.append(f"deleted {bucket.value}/{key}, written {self.now - written} ago")

    def check(self) -> None:
        for bucket, keys in self.named().items():
            for key in keys:
                if self.raw_store.head(bucket, key) is None:
                    self.violations.append(f"a row names {bucket.value}/{key}, which is gone")
        with self.catalog.session() as session:
            rows = session.execute(
                select(ArtworkRendition.artwork_id, ArtworkRendition.storage_key, ArtworkRendition.checksum)
            ).all()
        for artwork, key, checksum in rows:
            if self._rendering(artwork):
                continue  # its own keys are being rewritten: its rows are replaced when that is recorded
            data = (
                self.raw_store.get(Bucket.THUMBNAILS, key)
                if self.raw_store.head(Bucket.THUMBNAILS, key)
                else b""
            )
            if hashlib.sha256(data).hexdigest() != checksum:
                self.violations.append(f"artwork {artwork}'s {key} no longer holds the bytes it names")

    def apply(self, step: tuple[Any, ...]) -> None:
        name, *args = step
        getattr(self, name)(*args)


ARTWORKS = 3
index = st.integers(0, ARTWORKS - 1)
whole_sync = st.tuples(st.just("sync"), index)
url_change = st.tuples(st.just("change_url"), index, st.sampled_from(VARIANTS))
sync_step = st.one_of(
    whole_sync,
    st.tuples(st.just("download"), index),
    st.tuples(st.just("render"), index),
    st.tuples(st.just("record_next")),
    url_change,
    st.tuples(st.just("remove"), index),
    st.tuples(st.just("near_fold")),
)
injected = st.lists(sync_step, max_size=4)
# Whole syncs and URL changes weigh more: sharing, then an owner's URL change, needs several of them.
step = st.one_of(
    sync_step,
    whole_sync,
    whole_sync,
    st.tuples(st.just("new_source"), index, st.sampled_from(VARIANTS)),
    st.tuples(st.just("new_source"), index, st.just("c")),  # near-duplicates of "a" need a "c"
    st.tuples(st.just("near_fold")),
    st.tuples(st.just("near_fold")),
    st.tuples(st.just("tick"), st.sampled_from([5, 30, 61, 120])),
    st.tuples(st.just("cleanup"), injected, injected),
)
scenarios = st.lists(step, min_size=8, max_size=30)
# Every run tries this one as well: a share (1 has 0's bytes), hand-overs (0's URL changes, so its shared
# objects go to 1), and a delete (2's source, downloaded by a run that never recorded it, then removed).
# So the cases the assertions below require happen however few examples are generated.
COVERING = [
    ("sync", 0),
    ("sync", 1),
    ("change_url", 0, "b"),
    ("sync", 0),
    ("download", 2),
    ("remove", 2),
    ("tick", 120),
    ("cleanup", [], []),
]


def _items() -> list[CatalogItem]:
    _, ids = same_shard_ids("series", 2)
    other = next(i for i in range(1, 1000) if shard_of("movies", i) != shard_of("series", ids[0]))
    keyed = [("series", ids[0]), ("series", ids[1]), ("movies", other)]
    return [
        CatalogItem(t, c, 200 + n, f"https://artworks.thetvdb.com/banners/{200 + n}-a.jpg")
        for n, (t, c) in enumerate(keyed)
    ]


def _run(catalog: Catalog, store: ObjectStore, steps: list[tuple[Any, ...]]) -> Model:
    with catalog.session() as session:
        session.execute(delete(ArtworkRendition))
        session.execute(delete(Artwork))
        for model in CONTENT_MODELS.values():
            session.execute(delete(model))
    for bucket in Bucket:
        keys = [obj.key for obj in store.list(bucket, "")]
        if keys:
            store.delete(bucket, keys)
    items = _items()
    import_items(catalog, items)
    model = Model(catalog, store, items)
    for scenario_step in steps:
        model.apply(scenario_step)
        model.check()
        assert model.violations == [], (model.violations, steps)
    return model


@dataclass
class Tally:
    examples: int = 0
    steps: int = 0
    cleanups: int = 0
    deleted: int = 0
    shares: int = 0
    hand_overs: int = 0
    blocked: int = 0
    near_folded: int = 0

    def add(self, model: Model, steps: list[tuple[Any, ...]]) -> None:
        self.examples += 1
        self.steps += len(steps)
        self.cleanups += sum(1 for s in steps if s[0] == "cleanup")
        self.deleted += model.deleted
        self.shares += model.shares
        self.hand_overs += model.hand_overs
        self.blocked += model.blocked
        self.near_folded += model.near_folded


def _publish(tally: Tally, backend: str) -> None:
    record("dedup_cleanup_property", backend=backend, violations=0, **tally.__dict__)


HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


def test_cleanup_alongside_sharing_syncs_keeps_every_shared_object(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    tally = Tally()

    @settings(max_examples=examples(default=100, soak=300), **HYPOTHESIS)
    @given(steps=scenarios)
    @example(steps=COVERING)
    def check(steps: list[tuple[Any, ...]]) -> None:
        tally.add(_run(sqlite_catalog, store, steps), steps)

    check()
    shutil.rmtree(tmp_path / "storage", ignore_errors=True)
    assert tally.shares > 0 and tally.hand_overs > 0 and tally.deleted > 0  # the cases really happened
    assert tally.near_folded > 0
    assert tally.blocked == 0  # every hand-over found an heir
    _publish(tally, "SQLite + local store")


@pytest.mark.slow
def test_sharing_cleanup_property_on_postgresql_and_s3(
    postgres_catalog: Catalog, s3_store: S3ObjectStore
) -> None:
    tally = Tally()

    @settings(max_examples=examples(default=15, soak=30), **HYPOTHESIS)
    @given(steps=scenarios)
    @example(steps=COVERING)
    def check(steps: list[tuple[Any, ...]]) -> None:
        tally.add(_run(postgres_catalog, s3_store, steps), steps)

    check()
    _publish(tally, "PostgreSQL + SeaweedFS S3")
