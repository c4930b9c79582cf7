"""Near-duplicates on the production parts (PostgreSQL + SeaweedFS S3, sources over loopback): the same
picture at other sizes and qualities forms one cluster with the right best member; opting in serves
the whole cluster from it (the serving API returns the best's bytes for every member), cleanup keeps
what rows name and frees the rest, the best's URL change leaves the others intact, and opting out
renders every member on its own again."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.app import create_app
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition
from tvdb_images.catalog.near_duplicates import find_clusters
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stats import storage_stats
from tvdb_images.cli import main
from tvdb_images.definitions import build_definitions
from tvdb_images.fetch import ImageFetcher
from tvdb_images.imaging.perceptual import hamming
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.near_fold import (
    fold_near_duplicates,
    near_shared_members,
    unfold_near_duplicates,
)
from tvdb_images.pipeline.perceptual_backfill import backfill_perceptual_hashes
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import SHARDS
from tvdb_images_tests.support import services
from tvdb_images_tests.support.builders import settings_for_origin
from tvdb_images_tests.support.images.photos import encoded, shaped
from tvdb_images_tests.support.origins import LoopbackOrigin, respond
from tvdb_images_tests.support.reliability_setup import CatalogItem, import_items, production_settings

BEST = encoded(shaped("coffee", 1280, 720), "JPEG", quality=90)
SAME_SIZE_WORSE = encoded(shaped("coffee", 1280, 720), "JPEG", quality=50)
SMALLER = encoded(shaped("coffee", 960, 540), "JPEG", quality=60)
OTHER = encoded(shaped("rocket", 1280, 720), "JPEG", quality=90)
NEW = encoded(shaped("chelsea", 1280, 720), "JPEG", quality=90)
ITEMS = [
    CatalogItem("series", 21, 1, "/best.jpg"),
    CatalogItem("series", 22, 2, "/worse.jpg"),
    CatalogItem("movies", 23, 3, "/smaller.jpg"),
    CatalogItem("series", 24, 4, "/smaller-copy.jpg"),  # byte-identical to 3: shares its renditions
    CatalogItem("series", 25, 5, "/other.jpg"),
]
BODIES = {
    "/best.jpg": BEST,
    "/worse.jpg": SAME_SIZE_WORSE,
    "/smaller.jpg": SMALLER,
    "/smaller-copy.jpg": SMALLER,
    "/other.jpg": OTHER,
}
SCORES = {1: 10, 2: 5, 3: 50, 4: 50, 5: 1}  # 2 is as large as 1: the score decides


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as server:
        for path, body in BODIES.items():
            server.route(path, respond(200, body, {"Content-Type": "image/jpeg"}))
        yield server


def _sync(catalog: Catalog, store: ObjectStore, origin: LoopbackOrigin) -> None:
    settings = settings_for_origin(origin.netloc)
    with ImageFetcher(settings.fetch) as fetcher:
        _download, render = sync_scope(catalog, store, fetcher, settings, Scope())
    assert render.failed == 0


def _setup(catalog: Catalog, store: ObjectStore, origin: LoopbackOrigin) -> None:
    import_items(
        catalog, [CatalogItem(i.content_type, i.content_id, i.artwork_id, origin.url(i.url)) for i in ITEMS]
    )
    with catalog.session() as session:
        for artwork_id, score in SCORES.items():
            session.execute(update(Artwork).where(Artwork.id == artwork_id).values(score=score))
    _sync(catalog, store, origin)


def _keys(catalog: Catalog) -> dict[int, set[str]]:
    with catalog.session() as session:
        found: dict[int, set[str]] = {}
        for artwork_id, key in session.execute(
            select(ArtworkRendition.artwork_id, ArtworkRendition.storage_key)
        ):
            found.setdefault(artwork_id, set()).add(key)
    return found


def _assert_every_reference_holds_its_bytes(catalog: Catalog, store: ObjectStore) -> None:
    with catalog.session() as session:
        rows = session.execute(select(ArtworkRendition.storage_key, ArtworkRendition.checksum)).all()
    for key, checksum in rows:
        assert hashlib.sha256(store.get(Bucket.THUMBNAILS, key)).hexdigest() == checksum, key


def _partitions() -> list[tuple[str, str]]:
    return [(content_type, shard) for content_type in ("series", "movies") for shard in SHARDS]


def test_one_cluster_with_the_largest_then_best_scored_member_first(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    with postgres_catalog.session() as session:
        hashes = {row[0]: row[1] for row in session.execute(select(Artwork.id, Artwork.perceptual_hash))}
        clusters = find_clusters(session)
    assert all(value is not None for value in hashes.values())
    assert hashes[3] == hashes[4]  # byte-identical
    assert len(clusters) == 1
    cluster = clusters[0]
    assert [m.artwork_id for m in cluster.members] == [1, 2, 3, 4]
    assert cluster.best.artwork_id == 1 and cluster.sources == 3
    own = _own_bytes(postgres_catalog)
    assert min(own[3], own[4]) == 0 < max(own[3], own[4])  # one renders, the other shares it
    assert cluster.bytes_reclaimable == own[2] + own[3] + own[4] > 0


def _own_bytes(catalog: Catalog) -> dict[int, int]:
    with catalog.session() as session:
        found = {artwork_id: 0 for artwork_id in SCORES}
        for artwork_id, size, shared in session.execute(
            select(ArtworkRendition.artwork_id, ArtworkRendition.bytes, ArtworkRendition.shared)
        ):
            found[artwork_id] += 0 if shared else size
    return found


def test_opting_in_serves_the_cluster_from_its_best_member(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    before = _keys(postgres_catalog)
    own = _own_bytes(postgres_catalog)
    dry = fold_near_duplicates(postgres_catalog, s3_store, dry_run=True)
    assert dry.folded == 3 and dry.bytes_released == own[2] + own[3] + own[4]
    assert _keys(postgres_catalog) == before  # a dry run changes nothing
    report = fold_near_duplicates(postgres_catalog, s3_store)
    assert report.folded == 3 and report.skipped == 0
    assert report.bytes_released == own[2] + own[3] + own[4]
    after = _keys(postgres_catalog)
    for member in (2, 3, 4):
        assert after[member] == before[1]
    assert after[5] == before[5]
    assert sorted(near_shared_members_of(postgres_catalog)) == [2, 3, 4]
    with postgres_catalog.session() as session:
        stats = storage_stats(session)
        local = session.scalar(
            select(CONTENT_MODELS["movies"].local_image_url).where(CONTENT_MODELS["movies"].id == 23)
        )
        best_urls = set(session.scalars(select(ArtworkRendition.url).where(ArtworkRendition.artwork_id == 1)))
        rows = session.execute(
            select(ArtworkRendition.artwork_id, ArtworkRendition.bytes).where(ArtworkRendition.shared)
        ).all()
    assert local in best_urls
    assert stats.near_shared_renditions == len(rows)
    assert stats.bytes_saved_by_near_dedup == stats.bytes_saved_by_dedup == sum(b for _, b in rows) > 0

    client = TestClient(create_app(catalog=postgres_catalog, store=s3_store))
    best = client.get("/api/v1/images/artwork/1/small")
    assert best.status_code == 200
    for member in (2, 3, 4):
        served = client.get(f"/api/v1/images/artwork/{member}/small")
        assert served.status_code == 200 and served.content == best.content
    assert client.get("/api/v1/images/artwork/5/small").content != best.content
    answer = client.get("/api/v1/images/storage/stats").json()
    assert answer["near_shared_renditions"] == stats.near_shared_renditions
    assert answer["bytes_saved_by_near_deduplication"] == stats.bytes_saved_by_near_dedup
    assert answer["bytes_saved_by_deduplication"] == stats.bytes_saved_by_dedup

    # Cleanup frees the folded members' own objects and keeps everything a row names.
    cleaned = clean_orphans(postgres_catalog, s3_store, _partitions(), grace=timedelta(0), dry_run=False)
    assert cleaned.deleted == len(before[2] | before[3] | before[4])  # 3 and 4 named the same
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    assert fold_near_duplicates(postgres_catalog, s3_store).folded == 0  # already folded


def near_shared_members_of(catalog: Catalog) -> list[int]:
    with catalog.session() as session:
        return near_shared_members(session)


def test_the_best_members_url_change_leaves_the_others_intact(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    fold_near_duplicates(postgres_catalog, s3_store)
    origin.route("/new.jpg", respond(200, NEW, {"Content-Type": "image/jpeg"}))
    import_items(postgres_catalog, [CatalogItem("series", 21, 1, origin.url("/new.jpg"))])
    _sync(postgres_catalog, s3_store, origin)
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    keys = _keys(postgres_catalog)
    for member in (2, 3, 4):
        assert not keys[member] & keys[1]
    clean_orphans(postgres_catalog, s3_store, _partitions(), grace=timedelta(0), dry_run=False)
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)


def test_opting_out_renders_every_member_on_its_own_again(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    fold_near_duplicates(postgres_catalog, s3_store)
    assert unfold_near_duplicates(postgres_catalog) == 3
    settings = settings_for_origin(origin.netloc)
    render = render_stored_sources(postgres_catalog, s3_store, settings, Scope(), include_stale=True)
    assert render.succeeded == 3 and render.failed == 0
    assert near_shared_members_of(postgres_catalog) == []
    keys = _keys(postgres_catalog)
    assert keys[4] == keys[3] and not keys[3] & keys[1] and not keys[2] & keys[1]
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)


def test_the_dedup_report_asset_lists_clusters_and_applies_the_option(
    postgres_catalog: Catalog,
    s3_store: ObjectStore,
    origin: LoopbackOrigin,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    for near, folded in ((False, 0), (True, 3)):
        settings = production_settings(
            postgres_catalog.url, seaweedfs, s3_bucket_names, DEDUP_NEAR_DUPLICATES=near
        )
        job = build_definitions(settings).resolve_job_def("dedup_report_job")
        result = job.execute_in_process()
        assert result.success
        [materialization] = result.asset_materializations_for_node("dedup_report")
        metadata = materialization.metadata
        assert metadata["clusters"] == dg.MetadataValue.int(1)
        assert "| 1 | 1 | series/21" in str(metadata["clusters_table"].value)
        if near:
            assert metadata["members_folded"] == dg.MetadataValue.int(folded)
        else:
            assert metadata["members_unfolded"] == dg.MetadataValue.int(0)
    assert sorted(near_shared_members_of(postgres_catalog)) == [2, 3, 4]


def test_without_exact_deduplication_identical_sources_are_rendered_each(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    identical = [item for item in ITEMS if item.artwork_id in (3, 4)]
    import_items(
        postgres_catalog,
        [CatalogItem(i.content_type, i.content_id, i.artwork_id, origin.url(i.url)) for i in identical],
    )
    settings = settings_for_origin(origin.netloc, DEDUP_EXACT_DUPLICATES=False)
    with ImageFetcher(settings.fetch) as fetcher:
        _download, render = sync_scope(postgres_catalog, s3_store, fetcher, settings, Scope())
    assert render.succeeded == 2 and render.failed == 0
    keys = _keys(postgres_catalog)
    assert len(keys[3]) == len(keys[4]) > 0 and not keys[3] & keys[4]
    assert render.objects_written == len(keys[3]) + len(keys[4])


def test_artwork_rendered_before_hashes_existed_is_hashed_from_its_thumbnail(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    with postgres_catalog.session() as session:
        rendered = {row[0]: row[1] for row in session.execute(select(Artwork.id, Artwork.perceptual_hash))}
        session.execute(update(Artwork).values(perceptual_hash=None))
    report = backfill_perceptual_hashes(postgres_catalog, s3_store)
    assert report.hashed == len(SCORES) and report.failed == 0
    with postgres_catalog.session() as session:
        backfilled = {row[0]: row[1] for row in session.execute(select(Artwork.id, Artwork.perceptual_hash))}
        clusters = find_clusters(session)
    for artwork_id, value in rendered.items():
        assert hamming(backfilled[artwork_id], value) <= 2
    assert [sorted(m.artwork_id for m in c.members) for c in clusters] == [[1, 2, 3, 4]]
    assert backfill_perceptual_hashes(postgres_catalog, s3_store).hashed == 0  # nothing left to hash


def test_the_near_duplicates_command(
    postgres_catalog: Catalog,
    s3_store: ObjectStore,
    origin: LoopbackOrigin,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _setup(postgres_catalog, s3_store, origin)
    settings = production_settings(postgres_catalog.url, seaweedfs, s3_bucket_names)
    for name, value in {
        "DATABASE_URL": postgres_catalog.url,
        **seaweedfs.storage_values(settings.s3_bucket_originals, settings.s3_bucket_thumbnails),
    }.items():
        monkeypatch.setenv(name, str(value))
    assert main(["storage", "near-duplicates"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 near-duplicate clusters") and "best 1 (1280x720): 2, 3, 4" in out
    assert main(["storage", "near-duplicates", "--fold"]) == 2  # DEDUP_NEAR_DUPLICATES is off
    capsys.readouterr()
    monkeypatch.setenv("DEDUP_NEAR_DUPLICATES", "true")
    assert main(["storage", "near-duplicates", "--fold", "--dry-run"]) == 0
    assert "would fold 3, skipped 0" in capsys.readouterr().out
    assert near_shared_members_of(postgres_catalog) == []
    assert main(["storage", "near-duplicates", "--fold"]) == 0
    assert "folded 3, skipped 0" in capsys.readouterr().out
    assert near_shared_members_of(postgres_catalog) == [2, 3, 4]
