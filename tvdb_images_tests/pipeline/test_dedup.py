"""Exact deduplication on the production parts (PostgreSQL + SeaweedFS S3, sources over loopback):
identical sources are rendered and stored once, cleanup keeps shared objects until their last
reference goes, an owner's URL change leaves the others intact, and `storage dedup` folds a catalog
stored before sharing existed."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.removal import Removal, remove
from tvdb_images.catalog.rows import select_as
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stats import storage_stats
from tvdb_images.cli import main
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline import dedup
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.fold import fold_duplicates
from tvdb_images.pipeline.render import Rendered, _render_one, render_stored_sources
from tvdb_images.pipeline.report import StageReport
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import SHARDS
from tvdb_images_tests.support.builders import keys_under, settings_for_origin
from tvdb_images_tests.support.origins import LoopbackOrigin, respond
from tvdb_images_tests.support.reliability_setup import CatalogItem, import_items


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=80)
    return out.getvalue()


SOURCE_A, SOURCE_B = _jpeg(1), _jpeg(2)
# Artwork 1, 2 and 4 have identical bytes (two content types, three partitions); 3 is its own.
ITEMS = [
    CatalogItem("series", 11, 1, "/a1.jpg"),
    CatalogItem("series", 12, 2, "/a2.jpg"),
    CatalogItem("series", 13, 3, "/b.jpg"),
    CatalogItem("movies", 14, 4, "/a3.jpg"),
]
BODIES = {"/a1.jpg": SOURCE_A, "/a2.jpg": SOURCE_A, "/b.jpg": SOURCE_B, "/a3.jpg": SOURCE_A}


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as server:
        for path, body in BODIES.items():
            server.route(path, respond(200, body, {"Content-Type": "image/jpeg"}))
        yield server


def _import(catalog: Catalog, origin: LoopbackOrigin, items: list[CatalogItem]) -> None:
    import_items(
        catalog, [CatalogItem(i.content_type, i.content_id, i.artwork_id, origin.url(i.url)) for i in items]
    )


def _sync(catalog: Catalog, store: ObjectStore, origin: LoopbackOrigin, **overrides: object):
    settings = settings_for_origin(origin.netloc, **overrides)
    with ImageFetcher(settings.fetch) as fetcher:
        return sync_scope(catalog, store, fetcher, settings, Scope())


def _rows(catalog: Catalog) -> dict[int, list[ArtworkRendition]]:
    with catalog.session() as session:
        rows = session.scalars(select(ArtworkRendition).order_by(ArtworkRendition.size)).all()
        session.expunge_all()
    found: dict[int, list[ArtworkRendition]] = {}
    for row in rows:
        found.setdefault(row.artwork_id, []).append(row)
    return found


def _assert_every_reference_holds_its_bytes(catalog: Catalog, store: ObjectStore) -> None:
    """Every rendition row's object exists and is the very bytes the row's checksum names."""
    for rows in _rows(catalog).values():
        for row in rows:
            assert hashlib.sha256(store.get(Bucket.THUMBNAILS, row.storage_key)).hexdigest() == row.checksum
    with catalog.session() as session:
        for model in CONTENT_MODELS.values():
            for (url,) in session.execute(
                select(model.local_image_url).where(model.local_image_url.isnot(None))
            ):
                assert any(r.url == url for rows in _rows(catalog).values() for r in rows)


def _all_partitions() -> list[tuple[str, str]]:
    return [(content_type, shard) for content_type in ("series", "movies") for shard in SHARDS]


def test_identical_sources_are_rendered_and_stored_once(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _import(postgres_catalog, origin, ITEMS)
    _download, render = _sync(postgres_catalog, s3_store, origin)
    rows = _rows(postgres_catalog)
    sizes = len(rows[3])
    assert render.succeeded == 4 and render.failed == 0
    assert render.objects_written == 2 * sizes  # two distinct sources, each rendered once
    owner = next(a for a in (1, 2, 4) if not any(r.shared for r in rows[a]))
    owner_keys = sorted(r.storage_key for r in rows[owner])
    for artwork in {1, 2, 4} - {owner}:
        assert sorted(r.storage_key for r in rows[artwork]) == owner_keys
        assert all(r.shared for r in rows[artwork])
    assert not any(r.shared for r in rows[owner]) and not any(r.shared for r in rows[3])
    with postgres_catalog.session() as session:
        paths = {a.id: a.storage_path for a in session.scalars(select(Artwork))}
        assert {a.status for a in session.scalars(select(Artwork))} == {ArtworkStatus.PROCESSED.value}
        local = {row.id: row.local_image_url for row in session.scalars(select(CONTENT_MODELS["movies"]))}
    for artwork in {1, 2, 4} - {owner}:
        assert keys_under(s3_store, Bucket.THUMBNAILS, paths[artwork] + "/") == []
    assert local[14] in {r.url for r in rows[owner]}
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    with postgres_catalog.session() as session:
        stats = storage_stats(session)
    assert sum(r["objects"] for r in stats.renditions) == len(list(s3_store.list(Bucket.THUMBNAILS, "")))
    assert stats.bytes_saved_by_dedup == sum(r.bytes for a in {1, 2, 4} - {owner} for r in rows[a]) > 0

    # A later run: a new artwork with the same bytes shares the recorded renditions.
    origin.route("/a4.jpg", respond(200, SOURCE_A, {"Content-Type": "image/jpeg"}))
    _import(postgres_catalog, origin, [CatalogItem("series", 15, 5, "/a4.jpg")])
    _download, render = _sync(postgres_catalog, s3_store, origin)
    assert render.succeeded == 1 and render.objects_written == 0
    assert sorted(r.storage_key for r in _rows(postgres_catalog)[5]) == owner_keys


def test_cleanup_keeps_shared_objects_until_the_last_reference_goes(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _import(postgres_catalog, origin, ITEMS)
    _sync(postgres_catalog, s3_store, origin)
    rows = _rows(postgres_catalog)
    owner = next(a for a in (1, 2, 4) if not any(r.shared for r in rows[a]))
    shared_keys = [r.storage_key for r in rows[owner]]
    with postgres_catalog.session() as session:
        remove(session, Removal(artwork_ids=frozenset({owner})))
    report = clean_orphans(postgres_catalog, s3_store, _all_partitions(), grace=timedelta(0), dry_run=False)
    assert all(s3_store.head(Bucket.THUMBNAILS, key) is not None for key in shared_keys)
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    others = {1, 2, 4} - {owner}
    with postgres_catalog.session() as session:
        remove(session, Removal(artwork_ids=frozenset({min(others)})))
    clean_orphans(postgres_catalog, s3_store, _all_partitions(), grace=timedelta(0), dry_run=False)
    assert all(s3_store.head(Bucket.THUMBNAILS, key) is not None for key in shared_keys)
    with postgres_catalog.session() as session:
        remove(session, Removal(artwork_ids=frozenset({max(others)})))
    report = clean_orphans(postgres_catalog, s3_store, _all_partitions(), grace=timedelta(0), dry_run=False)
    assert all(s3_store.head(Bucket.THUMBNAILS, key) is None for key in shared_keys)  # the last one went
    assert report.deleted >= len(shared_keys)
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)


def test_an_owners_url_change_leaves_the_others_intact(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    _import(postgres_catalog, origin, ITEMS)
    _sync(postgres_catalog, s3_store, origin)
    rows = _rows(postgres_catalog)
    owner = next(a for a in (1, 2, 4) if not any(r.shared for r in rows[a]))
    before = {a: sorted(r.checksum for r in rows[a]) for a in (1, 2, 4)}
    item = next(i for i in ITEMS if i.artwork_id == owner)
    origin.route("/new.jpg", respond(200, _jpeg(3), {"Content-Type": "image/jpeg"}))
    _import(postgres_catalog, origin, [CatalogItem(item.content_type, item.content_id, owner, "/new.jpg")])
    _download, render = _sync(postgres_catalog, s3_store, origin)
    assert render.succeeded == 1 and render.failed == 0
    after = _rows(postgres_catalog)
    for artwork in {1, 2, 4} - {owner}:
        assert sorted(r.checksum for r in after[artwork]) == before[artwork]  # the same bytes, moved
        assert not {r.storage_key for r in after[artwork]} & {r.storage_key for r in after[owner]}
    assert sorted(r.checksum for r in after[owner]) != before[owner]
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    clean_orphans(postgres_catalog, s3_store, _all_partitions(), grace=timedelta(0), dry_run=False)
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)


def test_storage_dedup_folds_a_catalog_stored_before_sharing(
    postgres_catalog: Catalog, s3_store: ObjectStore, origin: LoopbackOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a catalog synced before this release holds: every duplicate rendered under its own path.
    monkeypatch.setattr(dedup.RunShares, "render_once", lambda self, task, render: render())
    _import(postgres_catalog, origin, ITEMS)
    _sync(postgres_catalog, s3_store, origin)
    monkeypatch.undo()
    rows = _rows(postgres_catalog)
    assert len({r.storage_key for a in (1, 2, 4) for r in rows[a]}) == 3 * len(rows[1])

    dry = fold_duplicates(postgres_catalog, s3_store, dry_run=True)
    assert (dry.groups, dry.folded) == (1, 2)
    assert _rows(postgres_catalog).keys() == rows.keys()
    assert {r.storage_key for a in (1, 2, 4) for r in _rows(postgres_catalog)[a]} == {
        r.storage_key for a in (1, 2, 4) for r in rows[a]
    }
    report = fold_duplicates(postgres_catalog, s3_store, dry_run=False)
    assert (report.groups, report.folded, report.skipped) == (1, 2, 0)
    assert report.bytes_released == sum(r.bytes for a in (2, 4) for r in rows[a])
    folded = _rows(postgres_catalog)
    assert {r.storage_key for a in (1, 2, 4) for r in folded[a]} == {r.storage_key for r in rows[1]}
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    cleanup = clean_orphans(postgres_catalog, s3_store, _all_partitions(), grace=timedelta(0), dry_run=False)
    assert cleanup.deleted == report.objects_released
    _assert_every_reference_holds_its_bytes(postgres_catalog, s3_store)
    assert fold_duplicates(postgres_catalog, s3_store, dry_run=False).folded == 0  # idempotent


def test_storage_dedup_command(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "storage"))
    assert main(["storage", "dedup", "--dry-run"]) == 0
    assert "0 groups of identical artwork: would fold 0, skipped 0" in capsys.readouterr().out
    assert main(["storage"]) == 2  # the group alone prints its help


def test_sharers_get_the_donors_placeholders_and_stay_whole_through_a_partial_rerender(
    sqlite_catalog: Catalog, local_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    """Several formats: sharing is keyed on the whole artwork signature, a sharer gets the donor's
    placeholders, and after one format's settings change every artwork holds every format, current."""
    _import(sqlite_catalog, origin, ITEMS)
    both: dict[str, object] = {"IMAGE_FORMATS": "webp,avif"}
    _sync(sqlite_catalog, local_store, origin, **both)
    for overrides in (both, {**both, "IMAGE_QUALITY_AVIF": 60}):
        settings = settings_for_origin(origin.netloc, **overrides)
        # The first pass renders nothing more; the second re-renders AVIF (a partial rerender).
        render = render_stored_sources(sqlite_catalog, local_store, settings, Scope(), include_stale=True)
        assert render.failed == 0
        rows = _rows(sqlite_catalog)
        assert any(r.shared for a in (1, 2, 4) for r in rows[a])  # identical sources still share
        with sqlite_catalog.session() as session:
            artworks = {a.id: a for a in session.scalars(select(Artwork))}
            session.expunge_all()
        for artwork_id, artwork in artworks.items():
            assert artwork.render_signature == settings.signature
            assert artwork.thumbhash and artwork.blurhash and artwork.dominant_color
            held = {(r.size, r.format) for r in rows[artwork_id]}
            assert {f for _, f in held} == {"webp", "avif"}
            assert len(held) == len(rows[artwork_id])
            for row in rows[artwork_id]:
                assert row.render_signature == settings.format_signatures[row.format]
        same = {(artworks[a].thumbhash, artworks[a].blurhash, artworks[a].dominant_color) for a in (1, 2, 4)}
        assert len(same) == 1
        _assert_every_reference_holds_its_bytes(sqlite_catalog, local_store)


def test_an_artwork_that_shares_is_rendered_in_full(
    sqlite_catalog: Catalog, local_store: ObjectStore, origin: LoopbackOrigin
) -> None:
    """The rule for partial rerenders: a sharer renders every listed format, an owner only the changed."""
    _import(sqlite_catalog, origin, ITEMS)
    _sync(sqlite_catalog, local_store, origin, IMAGE_FORMATS="webp,avif")
    changed = settings_for_origin(origin.netloc, IMAGE_FORMATS="webp,avif", IMAGE_QUALITY_AVIF=60)
    rows = _rows(sqlite_catalog)
    sharer = next(a for a in (1, 2, 4) if all(r.shared for r in rows[a]))
    owner = next(a for a in (1, 2, 4) if not any(r.shared for r in rows[a]))
    with sqlite_catalog.session() as session:
        tasks = {t.artwork_id: t for t in select_as(session, RenderTask, Artwork.id.in_([sharer, owner]))}
    assert dedup.shares_objects(sqlite_catalog, tasks[sharer])
    assert not dedup.shares_objects(sqlite_catalog, tasks[owner])
    for artwork_id, expected, expected_kept in ((sharer, {"webp", "avif"}, ()), (owner, {"avif"}, ("webp",))):
        task = tasks[artwork_id]
        full = dedup.shares_objects(sqlite_catalog, task)
        outcome = _render_one(task, local_store, changed, StageReport(stage="render"), full=full)
        assert isinstance(outcome, Rendered)
        assert {r.format for r in outcome.renditions} == expected
        assert outcome.kept_formats == expected_kept
