"""`tvdb-images catalog remove | stale | import --prune | refresh` and the `refresh_artwork` job, on the
embedded default (SQLite + local disk) and on PostgreSQL + SeaweedFS (support/catalog_life.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import update

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus, Series
from tvdb_images.cli import main
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.catalog_life import (
    BAD_ARTWORK,
    ITEMS,
    SETUP_NAMES,
    Setup,
    catalog_lines,
    count_status,
    rendition_rows,
    statuses_of,
    sync,
    synced,
)
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.reliability_log import record


def test_catalog_remove_command(life_cli: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    synced(life_cli)
    assert main(["catalog", "remove", "--item", "series/2", "--artwork-id", "103", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would remove 1 item, 2 artworks and 10 renditions" in out
    assert len(statuses_of(life_cli.catalog)) == 5
    assert main(["catalog", "remove", "--item", "series/2", "--artwork-id", "103"]) == 0
    assert "removed 1 item, 2 artworks and 10 renditions" in capsys.readouterr().out
    assert sorted(statuses_of(life_cli.catalog)) == [101, 102, 301]
    assert main(["catalog", "remove"]) == 2
    assert main(["catalog", "remove", "--item", "shows/2"]) == 2
    assert "not CONTENT_TYPE/ID" in capsys.readouterr().err
    assert main(["catalog", "remove", "--artwork-id", "999", "--item", "series/9", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 0 items, 0 artworks and 0 renditions" in out
    assert "not in the catalog: series/9, artwork 999" in out


def test_catalog_stale_command_lists_and_withdraws(
    life_cli: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    synced(life_cli)
    with life_cli.catalog.session() as session:
        session.execute(update(Artwork).where(Artwork.id == 101).values(stale_since=datetime.now(UTC)))
    assert main(["catalog", "stale", "--dry-run"]) == 2
    assert "--dry-run applies to --withdraw only" in capsys.readouterr().err

    assert main(["catalog", "stale", "--withdraw", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("101\tseries/1\tposter\tprocessed\t-\t")
    assert "1 stale artwork (policy: STALE_IMAGE_POLICY=serve)" in out
    assert "dry run: would withdraw 1 image" in out
    assert rendition_rows(life_cli.catalog, [101]) == 5  # the dry run withdrew nothing

    assert main(["catalog", "stale", "--withdraw"]) == 0
    assert "withdrew 1 image; orphan cleanup removes their objects" in capsys.readouterr().out
    assert rendition_rows(life_cli.catalog, [101]) == 0
    with life_cli.catalog.session() as session:
        assert session.get(Artwork, 101).local_image_url is None
        assert session.get(Series, 1).local_poster_url is None
    assert main(["catalog", "stale"]) == 0
    assert "0 stale artworks" in capsys.readouterr().out


def test_import_prune_removes_what_a_full_export_lacks(
    life_cli: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synced(life_cli)
    export = {
        ("series", 1): [(101, "poster", 10), (103, "fanart", 5)],  # 102 left the catalog
        ("movies", 3): ITEMS[("movies", 3)],
        ("movies", 5): [(501, "poster", 1)],  # new
    }  # series/2 left the catalog
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(catalog_lines(life_cli.origin, export)) + "\n")

    assert main(["catalog", "import", str(path), "--prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would remove 1 item, 2 artworks and 10 renditions" in out
    assert "series/2" in out and "artwork 102" in out
    assert sorted(statuses_of(life_cli.catalog)) == [101, 102, 103, 201, 301]

    assert main(["catalog", "import", str(path), "--prune"]) == 0
    out = capsys.readouterr().out
    assert "1 new" in out and "removed 1 item, 2 artworks and 10 renditions" in out
    assert sorted(statuses_of(life_cli.catalog)) == [101, 103, 301, 501]
    assert rendition_rows(life_cli.catalog, [102, 201]) == 0
    with life_cli.catalog.session() as session:
        assert session.get(Series, 2) is None

    # An export with a broken line could make a present item look absent: nothing is pruned.
    path.write_text(catalog_lines(life_cli.origin, {("movies", 3): ITEMS[("movies", 3)]})[0] + "\n{broken\n")
    assert main(["catalog", "import", str(path), "--prune"]) == 1
    refusal = capsys.readouterr().err.strip().splitlines()[-1]
    record(
        "catalog_life",
        case="catalog import --prune: an export lacking 1 item and 1 artwork, then one with a broken line",
        setup=SETUP_NAMES[life_cli.name],
        observed=f"{sorted(statuses_of(life_cli.catalog))} left; broken export: {refusal!r}, exit 1",
    )
    assert "not pruning: 1 line of the file invalid" in refusal
    # A valid line whose artwork the import skips (it belongs to another item): nothing is pruned.
    moved = {("movies", 3): [*ITEMS[("movies", 3)], (101, "poster", 1)], ("movies", 5): [(501, "poster", 1)]}
    path.write_text("\n".join(catalog_lines(life_cli.origin, moved)) + "\n")
    assert main(["catalog", "import", str(path), "--prune"]) == 1
    err = capsys.readouterr().err
    assert "artwork 101: belongs to series/1" in err and "not pruning: the import skipped 1 record" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["catalog", "import", str(empty), "--prune"]) == 1
    assert "names no items" in capsys.readouterr().err
    assert sorted(statuses_of(life_cli.catalog)) == [101, 103, 301, 501]


def test_catalog_refresh_command(life_cli: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    synced(life_cli, with_bad=True)
    with life_cli.catalog.session() as session:
        bad = session.get(Artwork, BAD_ARTWORK)
        assert (bad.status, bad.failure_cause) == ("failed", "unsupported_format")
    hits_before = life_cli.origin.hits("/101.jpg")

    assert main(["catalog", "refresh"]) == 2
    assert "name what to refresh" in capsys.readouterr().err
    assert main(["catalog", "refresh", "--item", "series/1", "--dry-run"]) == 0
    assert "3 artworks matched (3 processed); would mark 3" in capsys.readouterr().out
    assert set(statuses_of(life_cli.catalog).values()) == {"processed", "failed"}

    assert (
        main(["catalog", "refresh", "--item", "series/1", "--status", "processed", "--artwork-id", "301"])
        == 0
    )
    assert "4 artworks matched (4 processed); marked 4" in capsys.readouterr().out
    statuses = statuses_of(life_cli.catalog)
    assert {a for a, s in statuses.items() if s == "pending"} == {101, 102, 103, 301}
    with life_cli.catalog.session() as session:
        row = session.get(Artwork, 101)
        assert row.attempts == 0 and row.local_image_url  # still served until replaced

    sync(life_cli)
    refetched = life_cli.origin.hits("/101.jpg") - hits_before
    processed = count_status(statuses_of(life_cli.catalog), "processed")
    record(
        "catalog_life",
        case="catalog refresh --item series/1 --status processed --artwork-id 301, then a sync",
        setup=SETUP_NAMES[life_cli.name],
        observed=(
            f"marked {count_status(statuses, 'pending')} for re-download; the sync fetched"
            f" /101.jpg {refetched} more time; {processed} artworks processed after it"
        ),
    )
    assert life_cli.origin.hits("/101.jpg") == hits_before + 1  # downloaded again
    processed_ids = {a for a, s in statuses_of(life_cli.catalog).items() if s == "processed"}
    assert processed_ids == {101, 102, 103, 201, 301}

    assert main(["catalog", "refresh", "--cause", "unsupported_format"]) == 0
    assert "1 artwork matched (1 failed); marked 1" in capsys.readouterr().out
    with life_cli.catalog.session() as session:
        bad = session.get(Artwork, BAD_ARTWORK)
        assert (bad.status, bad.failure_cause, bad.attempts) == (ArtworkStatus.PENDING, None, 0)
    assert main(["catalog", "refresh", "--content-type", "movies", "--dry-run"]) == 0
    assert "would mark 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["catalog", "refresh", "--status", "sideways"])
    assert caught.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_refresh_artwork_job(sqlite_catalog: Catalog, life_origin: LoopbackOrigin, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    life = Setup(sqlite_catalog, store, life_origin, "embedded")
    synced(life)
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
    assert set(statuses_of(sqlite_catalog).values()) == {"processed"}

    config = {"artwork_ids": [301, 201], "content_type": "movies"}
    result = job.execute_in_process(
        instance=instance, run_config={"ops": {"refresh_artwork_op": {"config": config}}}
    )
    assert result.success
    assert {a for a, s in statuses_of(sqlite_catalog).items() if s == "pending"} == {301}

    bad = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"refresh_artwork_op": {"config": {}}}},
        raise_on_error=False,
    )
    assert not bad.success
