"""The serving API's two per-process caches: catalog lookups kept for SERVING_CACHE_SECONDS, and small
rendition bytes kept by checksum. Units first, then their effect on real served data (SQLite + local
files, and PostgreSQL + SeaweedFS S3)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select, update

from serving.byte_cache import RenditionByteCache
from serving.lookups import CatalogLookups, TtlCache
from serving.queries import CatalogReader, RenditionRecord
from tvdb_images.catalog import migrate
from tvdb_images.catalog.models import ArtworkRendition
from tvdb_images.storage import Bucket
from tvdb_images_tests.support.private_postgres import PrivatePostgres
from tvdb_images_tests.support.serving_data import PRIMARY_POSTER, RecordingStore, ServedData, api

POSTER_SMALL = "/api/v1/images/series/101/poster/small"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rendition(data: bytes, *, key: str = "series/ab/cd/poster/small.webp") -> RenditionRecord:
    checksum = hashlib.sha256(data).hexdigest()
    return RenditionRecord(
        size="small",
        format="webp",
        bucket=Bucket.THUMBNAILS,
        storage_key=key,
        width=1,
        height=1,
        bytes=len(data),
        content_type="image/webp",
        checksum=checksum,
        etag=f'"{checksum}"',
        version=checksum[:16],
        pinned_path="/x",
    )


# --- TtlCache ---------------------------------------------------------------------------------------


def test_ttl_cache_expires_entries_and_marks_them_due_for_refresh_first() -> None:
    clock = Clock()
    cache = TtlCache(ttl=10, entries=100, timer=clock)
    cache.put("k", "value")
    assert cache.get("k") == ("value", False)
    clock.now += 7.5  # past any refresh point (between 50% and 75% of the lifetime)
    assert cache.get("k") == ("value", True)
    clock.now += 2.6
    assert cache.get("k") is None and len(cache) == 0


def test_ttl_cache_is_bounded_and_zero_seconds_turns_it_off() -> None:
    cache = TtlCache(ttl=60, entries=3)
    for key in range(10):
        cache.put(key, key)
    assert len(cache) == 3 and cache.get(9) == (9, False) and cache.get(0) is None
    off = TtlCache(ttl=0, entries=3)
    off.put("k", "v")
    assert off.get("k") is None and len(off) == 0


# --- CatalogLookups ---------------------------------------------------------------------------------


class CountingReader:
    """Answers like CatalogReader, from a dict; counts the queries and can be made slow or failing."""

    def __init__(self, answers: dict[int, Any], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.queries = 0
        self.fail = False

    def artwork(self, artwork_id: int) -> Any:
        self.queries += 1
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("catalog down")
        return self.answers.get(artwork_id)


class Stored:
    """Stands for an ArtworkView whose artwork has renditions (or none)."""

    def __init__(self, name: str, stored: bool = True) -> None:
        self.name = name
        self.artwork = type("A", (), {"renditions": [object()] if stored else []})()


def test_lookups_answer_repeats_from_memory_and_share_one_query_between_concurrent_misses() -> None:
    reader = CountingReader({1: Stored("one")}, delay=0.05)
    lookups = CatalogLookups(reader, TtlCache(ttl=60, entries=10))  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        together = await asyncio.gather(*(lookups.artwork(1) for _ in range(20)))
        again = await lookups.artwork(1)
        return [*together, again]

    answers = asyncio.run(scenario())
    assert {a.name for a in answers} == {"one"}
    assert reader.queries == 1


def test_lookups_never_keep_missing_or_unstored_answers() -> None:
    reader = CountingReader({2: Stored("pending", stored=False)})
    lookups = CatalogLookups(reader, TtlCache(ttl=60, entries=10))  # type: ignore[arg-type]

    async def scenario() -> None:
        for _ in range(3):
            assert await lookups.artwork(404) is None
            assert (await lookups.artwork(2)).name == "pending"

    asyncio.run(scenario())
    assert reader.queries == 6  # every request asked the catalog again: stored images show up at once


async def refreshed(lookups: CatalogLookups) -> None:
    """Await the background refreshes the last lookups started (rather than sleep and hope they ended)."""
    if pending := list(lookups._loading.values()):
        await asyncio.wait(pending)


def test_lookups_refresh_in_the_background_and_drop_answers_that_went_away() -> None:
    clock = Clock()
    reader = CountingReader({1: Stored("old")})
    lookups = CatalogLookups(reader, TtlCache(ttl=10, entries=10, timer=clock))  # type: ignore[arg-type]

    async def scenario() -> tuple[str, str, Any]:
        await lookups.artwork(1)
        reader.answers[1] = Stored("new")
        clock.now += 8  # due for refresh, not expired
        during = (await lookups.artwork(1)).name  # answered from memory, refresh started
        await refreshed(lookups)
        after = (await lookups.artwork(1)).name
        del reader.answers[1]
        clock.now += 8
        await lookups.artwork(1)  # starts the refresh that finds it gone
        await refreshed(lookups)
        return during, after, await lookups.artwork(1)

    during, after, gone = asyncio.run(scenario())
    assert (during, after, gone) == ("old", "new", None)


def test_a_failed_background_refresh_keeps_serving_until_expiry_then_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    reader = CountingReader({1: Stored("kept")})
    lookups = CatalogLookups(reader, TtlCache(ttl=10, entries=10, timer=clock))  # type: ignore[arg-type]

    async def scenario() -> str:
        await lookups.artwork(1)
        reader.fail = True
        clock.now += 8
        kept = (await lookups.artwork(1)).name
        await refreshed(lookups)
        clock.now += 3  # expired: the next request waits for the catalog and sees its error
        with pytest.raises(RuntimeError, match="catalog down"):
            await lookups.artwork(1)
        return kept

    assert asyncio.run(scenario()) == "kept"
    assert "background refresh of a catalog lookup failed: catalog down" in caplog.text


# --- RenditionByteCache -----------------------------------------------------------------------------


def test_byte_cache_keeps_only_bytes_that_match_the_catalog_checksum() -> None:
    cache = RenditionByteCache(budget_bytes=1000)
    record = rendition(b"x" * 100)
    assert cache.offer(record, b"y" * 100) is False
    assert cache.get(record) is None
    assert cache.offer(record, b"x" * 100) is True
    assert cache.get(record) == b"x" * 100
    replaced = rendition(b"z" * 100)  # same storage key, new checksum: never the old bytes
    assert cache.get(replaced) is None


def test_byte_cache_stays_within_its_budget_and_skips_large_objects() -> None:
    cache = RenditionByteCache(budget_bytes=1000, max_object_bytes=300)
    records = [rendition(bytes([n]) * 250, key=f"k{n}") for n in range(10)]
    for record in records:
        cache.offer(record, bytes([records.index(record)]) * 250)
    assert cache.used_bytes <= 1000 and len(cache) == 4
    assert cache.get(records[-1]) is not None and cache.get(records[0]) is None
    big = rendition(b"b" * 400)
    assert not cache.holds_size(big.bytes)
    assert cache.offer(big, b"b" * 400) is True and cache.get(big) is None
    assert not RenditionByteCache.with_megabytes(0).holds_size(1)


# --- on served data ---------------------------------------------------------------------------------


def opens(recorder: RecordingStore) -> int:
    return sum(1 for name, _, _ in recorder.calls if name == "open")


def test_repeated_image_requests_read_storage_once(served: ServedData) -> None:
    cached = RecordingStore(served.store)
    with api(served, store=cached) as client:
        bodies = {client.get(POSTER_SMALL).content for _ in range(5)}
    assert len(bodies) == 1 and opens(cached) == 1
    uncached = RecordingStore(served.store)
    with api(served, store=uncached, serving_byte_cache_mb=0) as client:
        assert {client.get(POSTER_SMALL).content for _ in range(3)} == bodies
    assert opens(uncached) == 3


@contextmanager
def checksum_changed(data: ServedData, artwork_id: int, size: str) -> Iterator[None]:
    """The catalog names other bytes for one rendition (as while a re-render is recorded), then is put
    back."""
    where = (
        (ArtworkRendition.artwork_id == artwork_id)
        & (ArtworkRendition.size == size)
        & (ArtworkRendition.format == "webp")
    )
    with data.catalog.session() as session:
        original = session.execute(select(ArtworkRendition.checksum).where(where)).scalar_one()
    changed = hashlib.sha256(b"re-rendered " + original.encode()).hexdigest()

    def set_checksum(value: str) -> None:
        with data.catalog.session() as session:
            session.execute(update(ArtworkRendition).where(where).values(checksum=value))

    set_checksum(changed)
    try:
        yield
    finally:
        set_checksum(original)


def test_a_changed_rendition_is_served_within_the_cache_lifetime(served: ServedData) -> None:
    with api(served, serving_cache_seconds=0.5) as client:
        before = client.get(POSTER_SMALL)
        assert before.status_code == 200 and before.headers["etag"]
        with checksum_changed(served, PRIMARY_POSTER, "small"):
            assert client.get(POSTER_SMALL).headers["etag"] == before.headers["etag"]  # still cached
            time.sleep(0.6)
            after = client.get(POSTER_SMALL)
            # The catalog now names bytes that storage does not hold: sent, but neither cached nor
            # given the catalog's ETag, so no client keeps them under the new name.
            assert after.status_code == 200 and after.content == before.content
            assert "etag" not in after.headers and after.headers["cache-control"] == "no-cache"
        time.sleep(0.6)
        assert client.get(POSTER_SMALL).headers["etag"] == before.headers["etag"]


def test_the_image_reader_survives_a_postgresql_restart(caplog: pytest.LogCaptureFixture) -> None:
    """The reader skips the pre-ping round trip, so a connection the server dropped must be retried."""
    with PrivatePostgres() as postgres:
        url = postgres.create_database("catalog")
        migrate.upgrade(url)
        reader = CatalogReader.for_url(url, pool_size=2)
        try:
            assert reader.item_image("series", 101, "poster") is None  # leaves a pooled connection
            postgres.restart()
            with caplog.at_level(logging.WARNING, logger="serving.queries"):
                assert reader.item_image("series", 101, "poster") is None
                assert reader.artwork(5001) is None
            assert "catalog connection was dropped" in caplog.text
        finally:
            reader.dispose()
