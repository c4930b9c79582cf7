"""The catalog after its first sync: forced refresh, removal of items and artworks, a pruning import,
and orphan cleanup taking exactly the removed artwork's objects. Embedded (SQLite + local disk) and
production (PostgreSQL + SeaweedFS); every input image is generated here."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus, Series
from tvdb_images.catalog.removal import Removal, remove
from tvdb_images.catalog.work import Scope
from tvdb_images.cli import main
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import shard_of
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.builders import settings_for_origin
from tvdb_images_tests.origins import LoopbackOrigin, respond

# (content_type, content_id) -> [(artwork_id, image_type, score)]
ITEMS: dict[tuple[str, int], list[tuple[int, str, int]]] = {
    ("series", 1): [(101, "poster", 10), (102, "fanart", 10), (103, "fanart", 5)],
    ("series", 2): [(201, "poster", 10)],
    ("movies", 3): [(301, "poster", 10)],
}
BAD_ARTWORK = 401  # people/4: an HTML page, refused as unsupported_format


@dataclass
class Setup:
    catalog: Catalog
    store: ObjectStore
    origin: LoopbackOrigin
    name: str


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96 + seed % 7, 64), ((seed * 37) % 256, (seed * 91) % 256, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def images(tmp_path: Path) -> Iterator[LoopbackOrigin]:
    directory = tmp_path / "origin"
    directory.mkdir()
    for artworks in ITEMS.values():
        for artwork_id, _, _ in artworks:
            (directory / f"{artwork_id}.jpg").write_bytes(_jpeg(artwork_id))
    with LoopbackOrigin(directory) as origin:
        origin.route(
            f"/{BAD_ARTWORK}.jpg", respond(200, b"<html>sorry</html>", {"Content-Type": "image/jpeg"})
        )
        yield origin


@pytest.fixture(params=["embedded", "production"])
def setup(request: pytest.FixtureRequest, images: LoopbackOrigin, tmp_path: Path) -> Setup:
    if request.param == "embedded":
        names = {Bucket.ORIGINALS: "tvdb-originals", Bucket.THUMBNAILS: "tvdb-thumbnails"}
        store = LocalObjectStore(tmp_path / "storage", bucket_names=names)
        store.ensure_buckets()
        return Setup(request.getfixturevalue("sqlite_catalog"), store, images, "embedded")
    return Setup(
        request.getfixturevalue("postgres_catalog"), request.getfixturevalue("s3_store"), images, "production"
    )


def _lines(origin: LoopbackOrigin, items: dict[tuple[str, int], list[tuple[int, str, int]]]) -> list[str]:
    lines = []
    for (content_type, content_id), artworks in items.items():
        record = {
            "content_type": content_type,
            "id": content_id,
            "name": f"{content_type} {content_id}",
            "artworks": [
                {"id": a, "type": kind, "url": origin.url(f"/{a}.jpg"), "score": score}
                for a, kind, score in artworks
            ],
        }
        lines.append(json.dumps(record))
    return lines


def _sync(setup: Setup) -> None:
    settings = settings_for_origin(setup.origin.netloc)
    with ImageFetcher(settings.fetch) as fetcher:
        download_sources(setup.catalog, setup.store, fetcher, settings, Scope())
    render_stored_sources(setup.catalog, setup.store, settings, Scope())


def _synced(setup: Setup, *, with_bad: bool = False) -> None:
    items = dict(ITEMS)
    if with_bad:
        items[("people", 4)] = [(BAD_ARTWORK, "image", 1)]
    report = import_catalog_lines(setup.catalog, _lines(setup.origin, items))
    assert not report.errors
    _sync(setup)


def _all_keys(store: ObjectStore) -> dict[tuple[Bucket, str], int]:
    keys: dict[tuple[Bucket, str], int] = {}
    for bucket in Bucket:
        for prefix in ("series/", "movies/", "people/"):
            keys.update({(bucket, o.key): o.size for o in store.list(bucket, prefix)})
    return keys


def _objects_of(store: ObjectStore, storage_paths: list[str]) -> dict[tuple[Bucket, str], int]:
    return {k: v for k, v in _all_keys(store).items() if k[1].rsplit("/", 1)[0] in storage_paths}


def _cleanup(setup: Setup, *, dry_run: bool):  # type: ignore[no-untyped-def]
    partitions = sorted({(t, shard_of(t, i)) for t, i in ITEMS})
    later = datetime.now(UTC) + timedelta(days=2)
    return clean_orphans(
        setup.catalog, setup.store, partitions, grace=timedelta(hours=1), dry_run=dry_run, now=later
    )


def _statuses(catalog: Catalog) -> dict[int, str]:
    with catalog.session() as session:
        return dict(session.execute(select(Artwork.id, Artwork.status)).all())


def _rendition_rows(catalog: Catalog, artwork_ids: list[int]) -> int:
    with catalog.session() as session:
        query = select(func.count()).select_from(ArtworkRendition)
        return session.scalar(query.where(ArtworkRendition.artwork_id.in_(artwork_ids))) or 0


# --- removal, then cleanup -----------------------------------------------------------------------


def test_removed_rows_go_and_cleanup_then_takes_exactly_their_objects(setup: Setup) -> None:
    _synced(setup)
    assert set(_statuses(setup.catalog).values()) == {"processed"}
    with setup.catalog.session() as session:
        paths = dict(session.execute(select(Artwork.id, Artwork.storage_path)).all())
    doomed = _objects_of(setup.store, [paths[201], paths[102]])
    assert len(doomed) >= 2 * 5  # a source and its renditions, for each of the two artworks
    before = _all_keys(setup.store)
    removal = Removal(items=frozenset({("series", 2)}), artwork_ids=frozenset({102}))

    with setup.catalog.session() as session:
        dry = remove(session, removal, dry_run=True)
    assert (dry.items, dry.artworks, dry.renditions) == (1, 2, _rendition_rows(setup.catalog, [102, 201]))
    assert "would remove 1 item, 2 artworks" in dry.summary()
    assert "series/2" in dry.examples and any("artwork 102" in e for e in dry.examples)
    assert len(_statuses(setup.catalog)) == 5  # nothing removed by the dry run

    with setup.catalog.session() as session:
        done = remove(session, removal)
    assert (done.items, done.artworks, done.renditions) == (dry.items, dry.artworks, dry.renditions)
    assert sorted(_statuses(setup.catalog)) == [101, 103, 301]
    assert _rendition_rows(setup.catalog, [102, 201]) == 0
    with setup.catalog.session() as session:
        assert session.get(Series, 2) is None
        kept = session.get(Series, 1)
        fanart_103 = session.get(Artwork, 103)
        # series/1's primary fanart was 102; it now points at the one that is left.
        assert kept.fanart_url == fanart_103.source_url
        assert kept.local_fanart_url == fanart_103.local_image_url
    assert _all_keys(setup.store) == before  # objects stay until cleanup

    dry_cleanup = _cleanup(setup, dry_run=True)
    assert dry_cleanup.would_delete == len(doomed)
    assert dry_cleanup.bytes_that_would_be_freed == sum(doomed.values())
    reported = dry_cleanup.as_dict()
    assert "bytes_freed" not in reported and "deleted" not in reported
    assert reported["bytes_that_would_be_freed"] == sum(doomed.values())
    expected_examples = {f"{setup.store.bucket_names[b]}/{k}" for b, k in doomed}
    assert set(dry_cleanup.examples) == expected_examples
    assert _all_keys(setup.store) == before

    cleanup = _cleanup(setup, dry_run=False)
    assert cleanup.deleted == len(doomed) and cleanup.bytes_freed == sum(doomed.values())
    assert "bytes_that_would_be_freed" not in cleanup.as_dict()
    assert set(_all_keys(setup.store)) == set(before) - set(doomed)
    if isinstance(setup.store, LocalObjectStore):
        # Directories the deleted objects leave empty go too: all of series/2's, none that hold 103's.
        for bucket in Bucket:
            root = setup.store.root / setup.store.bucket_names[bucket]
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
        (tmp_path / "301.jpg").write_bytes(_jpeg(301))
        setup = Setup(sqlite_catalog, store, origin, "embedded")
        import_catalog_lines(sqlite_catalog, _lines(origin, {("movies", 3): ITEMS[("movies", 3)]}))
        _sync(setup)
    assert _rendition_rows(sqlite_catalog, [301]) == 5
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


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    monkeypatch.setenv("DATABASE_URL", setup.catalog.url)
    monkeypatch.setenv("TVDB_IMAGES_DATA_DIR", str(tmp_path / "data"))
    return setup


def test_catalog_remove_command(cli_env: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _synced(cli_env)
    assert main(["catalog", "remove", "--item", "series/2", "--artwork-id", "103", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would remove 1 item, 2 artworks and 10 renditions" in out
    assert len(_statuses(cli_env.catalog)) == 5
    assert main(["catalog", "remove", "--item", "series/2", "--artwork-id", "103"]) == 0
    assert "removed 1 item, 2 artworks and 10 renditions" in capsys.readouterr().out
    assert sorted(_statuses(cli_env.catalog)) == [101, 102, 301]
    assert main(["catalog", "remove"]) == 2
    assert main(["catalog", "remove", "--item", "shows/2"]) == 2
    assert "not CONTENT_TYPE/ID" in capsys.readouterr().err


def test_import_prune_removes_what_a_full_export_lacks(
    cli_env: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _synced(cli_env)
    export = {
        ("series", 1): [(101, "poster", 10), (103, "fanart", 5)],  # 102 left the catalog
        ("movies", 3): ITEMS[("movies", 3)],
        ("movies", 5): [(501, "poster", 1)],  # new
    }  # series/2 left the catalog
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(_lines(cli_env.origin, export)) + "\n")

    assert main(["catalog", "import", str(path), "--prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would remove 1 item, 2 artworks and 10 renditions" in out
    assert "series/2" in out and "artwork 102" in out
    assert sorted(_statuses(cli_env.catalog)) == [101, 102, 103, 201, 301]

    assert main(["catalog", "import", str(path), "--prune"]) == 0
    out = capsys.readouterr().out
    assert "1 new" in out and "removed 1 item, 2 artworks and 10 renditions" in out
    assert sorted(_statuses(cli_env.catalog)) == [101, 103, 301, 501]
    assert _rendition_rows(cli_env.catalog, [102, 201]) == 0
    with cli_env.catalog.session() as session:
        assert session.get(Series, 2) is None

    # An export with a broken line could make a present item look absent: nothing is pruned.
    path.write_text(_lines(cli_env.origin, {("movies", 3): ITEMS[("movies", 3)]})[0] + "\n{broken\n")
    assert main(["catalog", "import", str(path), "--prune"]) == 1
    assert "not pruning: 1 lines" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["catalog", "import", str(empty), "--prune"]) == 1
    assert "names no items" in capsys.readouterr().err
    assert sorted(_statuses(cli_env.catalog)) == [101, 103, 301, 501]


def test_catalog_refresh_command(cli_env: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _synced(cli_env, with_bad=True)
    with cli_env.catalog.session() as session:
        bad = session.get(Artwork, BAD_ARTWORK)
        assert (bad.status, bad.failure_cause) == ("failed", "unsupported_format")
    hits_before = cli_env.origin.hits("/101.jpg")

    assert main(["catalog", "refresh"]) == 2
    assert "name what to refresh" in capsys.readouterr().err
    assert main(["catalog", "refresh", "--item", "series/1", "--dry-run"]) == 0
    assert "3 artworks matched (3 processed); would mark 3" in capsys.readouterr().out
    assert set(_statuses(cli_env.catalog).values()) == {"processed", "failed"}

    assert (
        main(["catalog", "refresh", "--item", "series/1", "--status", "processed", "--artwork-id", "301"])
        == 0
    )
    assert "4 artworks matched (4 processed); marked 4" in capsys.readouterr().out
    statuses = _statuses(cli_env.catalog)
    assert {a for a, s in statuses.items() if s == "pending"} == {101, 102, 103, 301}
    with cli_env.catalog.session() as session:
        row = session.get(Artwork, 101)
        assert row.attempts == 0 and row.local_image_url  # still served until replaced

    _sync(cli_env)
    assert cli_env.origin.hits("/101.jpg") == hits_before + 1  # downloaded again
    assert {a for a, s in _statuses(cli_env.catalog).items() if s == "processed"} == {101, 102, 103, 201, 301}

    assert main(["catalog", "refresh", "--cause", "unsupported_format"]) == 0
    assert "1 artwork matched (1 failed); marked 1" in capsys.readouterr().out
    with cli_env.catalog.session() as session:
        bad = session.get(Artwork, BAD_ARTWORK)
        assert (bad.status, bad.failure_cause, bad.attempts) == (ArtworkStatus.PENDING, None, 0)
    assert main(["catalog", "refresh", "--content-type", "movies", "--dry-run"]) == 0
    assert "would mark 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["catalog", "refresh", "--status", "sideways"])
    assert caught.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_refresh_artwork_job(sqlite_catalog: Catalog, images: LoopbackOrigin, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    setup = Setup(sqlite_catalog, store, images, "embedded")
    _synced(setup)
    settings = Settings.model_validate(
        {"DATABASE_URL": sqlite_catalog.url, "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}
    )
    job = build_definitions(settings).resolve_job_def("refresh_artwork")
    instance = dg.DagsterInstance.ephemeral()
    config = {"items": ["series/1"], "statuses": ["processed"], "dry_run": True}
    result = job.execute_in_process(
        instance=instance, run_config={"ops": {"refresh_artwork_op": {"config": config}}}
    )
    assert result.success
    metadata = next(e for e in result.all_events if e.is_successful_output).step_output_data.metadata
    assert metadata["would_mark"].value == 3 and metadata["matched"].value == 3
    assert set(_statuses(sqlite_catalog).values()) == {"processed"}

    config = {"artwork_ids": [301, 201], "content_type": "movies"}
    result = job.execute_in_process(
        instance=instance, run_config={"ops": {"refresh_artwork_op": {"config": config}}}
    )
    assert result.success
    assert {a for a, s in _statuses(sqlite_catalog).items() if s == "pending"} == {301}

    bad = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"refresh_artwork_op": {"config": {}}}},
        raise_on_error=False,
    )
    assert not bad.success


def test_renditions_of_an_artwork_removed_during_its_render_are_not_recorded(setup: Setup) -> None:
    """A sync that stored an artwork's renditions just as an operator removed it records nothing and
    carries on (no foreign-key error ends its batch); cleanup takes the objects."""
    from tvdb_images.catalog import work

    _synced(setup)
    with setup.catalog.session() as session:
        row = session.get(Artwork, 301)
        task = work.RenderTask(
            row.id, row.content_type, row.content_id, row.image_type, row.storage_path,
            row.source_format, row.source_checksum, source_url=row.source_url,
        )  # fmt: skip
        stored = [
            work.StoredRendition(
                r.size, r.format, r.storage_key, r.url, r.width, r.height, r.bytes, r.content_type, r.checksum
            )
            for r in row.renditions
        ]
        signature = row.render_signature
    with setup.catalog.session() as session:
        remove(session, Removal(artwork_ids=frozenset({301})))
    with setup.catalog.session() as session:
        work.record_renditions(session, task, stored, signature=signature)
    assert 301 not in _statuses(setup.catalog)
    assert _rendition_rows(setup.catalog, [301]) == 0
