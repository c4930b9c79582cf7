"""Removing items and artworks from the catalog, and orphan cleanup then taking exactly their objects:
on the embedded default (SQLite + local disk) and on PostgreSQL + SeaweedFS; every input image is
generated (tvdb_images_tests/support/catalog_life.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, Series
from tvdb_images.catalog.removal import Removal, remove
from tvdb_images.storage import Bucket
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.catalog_life import (
    ITEMS,
    SETUP_NAMES,
    Setup,
    all_keys,
    catalog_lines,
    cleanup_orphans_later,
    jpeg,
    objects_of,
    rendition_rows,
    statuses_of,
    sync,
    synced,
)
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.reliability_log import record


def test_removed_rows_go_and_cleanup_then_takes_exactly_their_objects(life: Setup) -> None:
    synced(life)
    assert set(statuses_of(life.catalog).values()) == {"processed"}
    with life.catalog.session() as session:
        paths = dict(session.execute(select(Artwork.id, Artwork.storage_path)).all())
    doomed = objects_of(life.store, [paths[201], paths[102]])
    assert len(doomed) >= 2 * 5  # a source and its renditions, for each of the two artworks
    before = all_keys(life.store)
    removal = Removal(items=frozenset({("series", 2)}), artwork_ids=frozenset({102}))

    with life.catalog.session() as session:
        dry = remove(session, removal, dry_run=True)
    assert (dry.items, dry.artworks, dry.renditions) == (1, 2, rendition_rows(life.catalog, [102, 201]))
    assert "would remove 1 item, 2 artworks" in dry.summary()
    assert "series/2" in dry.examples and any("artwork 102" in e for e in dry.examples)
    assert len(statuses_of(life.catalog)) == 5  # nothing removed by the dry run

    with life.catalog.session() as session:
        done = remove(session, removal)
    assert (done.items, done.artworks, done.renditions) == (dry.items, dry.artworks, dry.renditions)
    assert sorted(statuses_of(life.catalog)) == [101, 103, 301]
    assert rendition_rows(life.catalog, [102, 201]) == 0
    with life.catalog.session() as session:
        assert session.get(Series, 2) is None
        kept = session.get(Series, 1)
        fanart_103 = session.get(Artwork, 103)
        # series/1's primary fanart was 102; it now points at the one that is left.
        assert kept.fanart_url == fanart_103.source_url
        assert kept.local_fanart_url == fanart_103.local_image_url
    assert all_keys(life.store) == before  # objects stay until cleanup

    dry_cleanup = cleanup_orphans_later(life, dry_run=True)
    assert dry_cleanup.would_delete == len(doomed)
    assert dry_cleanup.bytes_that_would_be_freed == sum(doomed.values())
    reported = dry_cleanup.as_dict()
    assert "bytes_freed" not in reported and "deleted" not in reported
    assert reported["bytes_that_would_be_freed"] == sum(doomed.values())
    expected_examples = {f"{life.store.bucket_names[b]}/{k}" for b, k in doomed}
    assert set(dry_cleanup.examples) == expected_examples
    assert all_keys(life.store) == before

    cleanup = cleanup_orphans_later(life, dry_run=False)
    after = all_keys(life.store)
    record(
        "catalog_life",
        case="remove an item and an artwork, then orphan cleanup",
        setup=SETUP_NAMES[life.name],
        observed=(
            f"{done.summary()}; dry-run cleanup: {dry_cleanup.would_delete} objects,"
            f" {dry_cleanup.bytes_that_would_be_freed} bytes_that_would_be_freed; cleanup deleted"
            f" {cleanup.deleted} objects, {len(set(before) - set(doomed) - set(after))} of other artwork"
        ),
        missing_objects=len(set(before) - set(doomed) - set(after)),
        unreferenced_objects=len(set(after) & set(doomed)),
    )
    assert cleanup.deleted == len(doomed) and cleanup.bytes_freed == sum(doomed.values())
    assert "bytes_that_would_be_freed" not in cleanup.as_dict()
    assert set(all_keys(life.store)) == set(before) - set(doomed)
    if isinstance(life.store, LocalObjectStore):
        # Directories the deleted objects leave empty go too: all of series/2's, none that hold 103's.
        for bucket in Bucket:
            root = life.store.root / life.store.bucket_names[bucket]
            assert not (root / paths[201]).parent.exists()
            assert (root / paths[103]).is_dir() and not any(
                p.is_file() for p in (root / paths[102]).glob("*")
            )


def test_renditions_are_removed_on_sqlite_without_foreign_keys(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    with LoopbackOrigin(tmp_path) as origin:
        (tmp_path / "301.jpg").write_bytes(jpeg(301))
        life = Setup(sqlite_catalog, store, origin, "embedded")
        import_catalog_lines(sqlite_catalog, catalog_lines(origin, {("movies", 3): ITEMS[("movies", 3)]}))
        sync(life)
    assert rendition_rows(sqlite_catalog, [301]) == 5
    plain = create_engine(sqlite_catalog.url)  # no PRAGMA foreign_keys: SQLite's default, off
    try:
        with Session(plain) as session, session.begin():
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 0
            report = remove(session, Removal(artwork_ids=frozenset({301})))
        assert (report.artworks, report.renditions) == (1, 5)
        with plain.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM artwork_renditions")).scalar() == 0
    finally:
        plain.dispose()


def test_renditions_of_an_artwork_removed_during_its_render_are_not_recorded(life: Setup) -> None:
    """A sync that stored an artwork's renditions just as an operator removed it records nothing and
    carries on (no foreign-key error ends its batch); cleanup takes the objects."""
    from tvdb_images.catalog import queue, results

    synced(life)
    with life.catalog.session() as session:
        row = session.get(Artwork, 301)
        task = queue.RenderTask(
            row.id, row.content_type, row.content_id, row.image_type, row.storage_path,
            row.source_format, row.source_checksum, source_url=row.source_url,
        )  # fmt: skip
        stored = [
            results.StoredRendition(
                r.size, r.format, r.storage_key, r.url, r.width, r.height, r.bytes, r.content_type, r.checksum
            )
            for r in row.renditions
        ]
        signature = row.render_signature
    with life.catalog.session() as session:
        remove(session, Removal(artwork_ids=frozenset({301})))
    with life.catalog.session() as session:
        results.record_renditions(session, task, stored, signature=signature)
    assert 301 not in statuses_of(life.catalog)
    assert rendition_rows(life.catalog, [301]) == 0
