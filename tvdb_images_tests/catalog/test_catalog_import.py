"""`tvdb-images catalog import`: JSON Lines upserts, on SQLite and on real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tvdb_images.catalog import migrate, queue, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus, Movie, Series
from tvdb_images.cli import main
from tvdb_images.storage import layout


def _line(content_type: str, content_id: int, *artworks: dict, name: str = "Item") -> str:
    return json.dumps(
        {"content_type": content_type, "id": content_id, "name": name, "artworks": list(artworks)}
    )


def _art(artwork_id: int, image_type: str, url: str, score: int = 10, language: str | None = "eng") -> dict:
    return {
        "id": artwork_id,
        "type": image_type,
        "url": url,
        "language": language,
        "score": score,
        "width": 680,
        "height": 1000,
    }


def test_import_creates_rows_with_layout_and_source_urls(any_catalog: Catalog) -> None:
    report = import_catalog_lines(
        any_catalog,
        [
            _line(
                "series",
                121361,
                _art(1, "poster", "https://a/p1.jpg", 5),
                _art(2, "poster", "https://a/p2.jpg", 9),
                _art(3, "fanart", "https://a/f.jpg"),
                name="Game",
            ),
            _line("movies", 7, _art(4, "poster", "https://a/m.jpg")),
        ],
    )
    assert (report.items, report.artworks_new, report.errors) == (2, 4, [])
    with any_catalog.session() as session:
        series = session.get(Series, 121361)
        assert series is not None and series.name == "Game"
        assert series.poster_url == "https://a/p2.jpg"  # the higher score is the primary poster
        assert series.fanart_url == "https://a/f.jpg"
        assert session.get(Movie, 7) is not None
        best, other = session.get(Artwork, 2), session.get(Artwork, 1)
        assert best.status == ArtworkStatus.PENDING and best.attempts == 0
        assert best.storage_path == layout.artwork_storage_path("series", 121361, "poster", None)
        assert other.storage_path == layout.artwork_storage_path("series", 121361, "poster", 1)
        assert best.shard == layout.shard_of("series", 121361)


def test_reimport_upserts_and_a_changed_url_marks_for_redownload(any_catalog: Catalog) -> None:
    import_catalog_lines(
        any_catalog,
        [_line("series", 1, _art(10, "poster", "https://a/1.jpg"), _art(11, "banner", "https://a/2.jpg"))],
    )
    with any_catalog.session() as session:
        for artwork_id in (10, 11):
            results.record_download(
                session, artwork_id, checksum="c" * 64, source_format="jpeg", width=1, height=1, size=1
            )
        results.record_failure(session, 11, cause="timeout", detail="slow", retryable=True)
    report = import_catalog_lines(
        any_catalog,
        [
            _line(
                "series",
                1,
                _art(10, "poster", "https://a/1.jpg", score=50),
                _art(11, "banner", "https://a/2-new.jpg"),
                name="Renamed",
            )
        ],
    )
    assert (report.artworks_new, report.artworks_changed, report.artworks_unchanged) == (0, 1, 1)
    with any_catalog.session() as session:
        unchanged, changed = session.get(Artwork, 10), session.get(Artwork, 11)
        assert unchanged.status == ArtworkStatus.DOWNLOADED and unchanged.score == 50
        assert changed.status == ArtworkStatus.PENDING
        assert (changed.attempts, changed.failure_cause) == (0, None)
        assert changed.source_url == "https://a/2-new.jpg"
        assert session.get(Series, 1).name == "Renamed"
        assert session.get(Series, 1).banner_url == "https://a/2-new.jpg"


def test_bad_lines_are_reported_and_the_rest_loads(sqlite_catalog: Catalog) -> None:
    report = import_catalog_lines(
        sqlite_catalog,
        [
            "not json",
            json.dumps({"content_type": "shows", "id": 1}),
            json.dumps({"content_type": "series", "id": -5}),
            _line("series", 2, _art(20, "sticker", "https://a/x.jpg")),
            _line("series", 3, _art(30, "poster", "https://a/ok.jpg")),
        ],
    )
    assert report.items == 1 and report.artworks_new == 1
    assert [e.split(":")[0] for e in report.errors] == ["line 1", "line 2", "line 3", "line 4"]
    assert "unknown artwork type 'sticker'" in report.errors[3]


def test_artwork_moving_to_another_item_is_refused(sqlite_catalog: Catalog) -> None:
    import_catalog_lines(sqlite_catalog, [_line("series", 1, _art(40, "poster", "https://a/1.jpg"))])
    report = import_catalog_lines(sqlite_catalog, [_line("series", 2, _art(40, "poster", "https://a/1.jpg"))])
    assert report.errors and "belongs to series/1" in report.errors[0]
    with sqlite_catalog.session() as session:
        assert session.scalar(select(Artwork.content_id).where(Artwork.id == 40)) == 1


def test_rows_inserted_by_a_proxy_get_their_layout(any_catalog: Catalog) -> None:
    with any_catalog.session() as session:
        session.add(
            Artwork(
                id=77, content_type="people", content_id=9, image_type="image", source_url="https://a/p.jpg"
            )
        )
    with any_catalog.session() as session:
        assert queue.assign_missing_layout(session) == 1
        row = session.get(Artwork, 77)
        assert row.storage_path == layout.artwork_storage_path("people", 9, "image", None)
        assert row.shard == layout.shard_of("people", 9)
        assert row.status == ArtworkStatus.PENDING


def test_cli_import_and_db_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    assert f"revision {migrate.head_revision()}" in capsys.readouterr().out
    catalog_file = tmp_path / "catalog.jsonl"
    catalog_file.write_text(_line("seasons", 3, _art(50, "poster", "https://a/s.jpg")) + "\n{broken\n")
    assert main(["catalog", "import", str(catalog_file)]) == 1  # one bad line -> non-zero exit
    captured = capsys.readouterr()
    assert "1 item, 1 artwork (1 new" in captured.out
    assert "line 2" in captured.err
