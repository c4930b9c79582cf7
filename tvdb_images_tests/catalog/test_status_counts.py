"""`artwork_status_counts` (triggers of migration 0007) stays equal to a real GROUP BY over artwork,
on SQLite and PostgreSQL, through every kind of write, folds, and concurrent writers."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text, update

from tvdb_images.catalog import migrate, status_counts
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatusCount
from tvdb_images.catalog.upsert import upsert

TYPES = ("series", "movies", "episodes")
STATUSES = ("pending", "downloaded", "processed", "failed", "gone")
CAUSES = (None, "http_404", "timeout", "corrupt")


def _row(artwork_id: int, rng: random.Random) -> dict[str, Any]:
    status = rng.choice(STATUSES)
    return {
        "id": artwork_id,
        "content_type": rng.choice(TYPES),
        "content_id": artwork_id % 97,
        "image_type": "poster",
        "source_url": f"https://example.com/{artwork_id}.jpg",
        "status": status,
        "failure_cause": rng.choice(CAUSES[1:]) if status in ("failed", "gone") else None,
    }


def _assert_counts_match(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        assert status_counts.read(connection).counts == status_counts.exact(connection)


def _delta_rows(catalog: Catalog) -> int:
    with catalog.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ArtworkStatusCount)).scalar_one()


def test_counts_follow_inserts_updates_and_deletes(any_catalog: Catalog) -> None:
    rng = random.Random(7)
    with any_catalog.session() as session:
        session.execute(
            upsert(
                session,
                Artwork,
                [_row(i, rng) for i in range(1, 301)],
                index_elements=["id"],
                update_columns=["status"],
            )
        )
    _assert_counts_match(any_catalog)
    with any_catalog.session() as session:  # one status change, then a bulk one
        session.execute(update(Artwork).where(Artwork.id == 1).values(status="processed", failure_cause=None))
        session.execute(update(Artwork).where(Artwork.status == "pending").values(status="downloaded"))
    _assert_counts_match(any_catalog)
    with any_catalog.session() as session:  # failure causes change without a status change
        session.execute(update(Artwork).where(Artwork.status == "failed").values(failure_cause="timeout"))
        session.execute(
            update(Artwork).where(Artwork.id.between(10, 60)).values(status="failed", failure_cause="corrupt")
        )
    _assert_counts_match(any_catalog)
    before = _delta_rows(any_catalog)
    with any_catalog.session() as session:  # columns the counts ignore append no delta
        session.execute(update(Artwork).values(score=5, attempts=Artwork.attempts + 1))
    assert _delta_rows(any_catalog) == before
    with any_catalog.session() as session:
        session.execute(delete(Artwork).where(Artwork.id % 3 == 0))
        session.add(Artwork(**_row(1000, rng)))
    _assert_counts_match(any_catalog)
    with any_catalog.session() as session:
        session.execute(delete(Artwork))
    with any_catalog.engine.connect() as connection:
        assert status_counts.read(connection).counts == {}


def test_bulk_upsert_counts_inserted_and_updated_rows(any_catalog: Catalog) -> None:
    rng = random.Random(11)
    first = [_row(i, rng) for i in range(1, 501)]
    with any_catalog.session() as session:
        session.execute(upsert(session, Artwork, first, index_elements=["id"], update_columns=["status"]))
    # Half the rows exist (their status and cause change), half are new.
    second = [_row(i, rng) for i in range(250, 751)]
    with any_catalog.session() as session:
        session.execute(
            upsert(
                session,
                Artwork,
                second,
                index_elements=["id"],
                update_columns=["content_type", "status", "failure_cause"],
            )
        )
    _assert_counts_match(any_catalog)
    with any_catalog.engine.connect() as connection:
        assert sum(status_counts.read(connection).counts.values()) == 750


def test_fold_compacts_to_one_row_per_group_and_keeps_counts(any_catalog: Catalog) -> None:
    rng = random.Random(3)
    for start in range(1, 400, 40):  # many statements: many delta rows
        with any_catalog.session() as session:
            session.execute(
                upsert(
                    session,
                    Artwork,
                    [_row(i, rng) for i in range(start, start + 40)],
                    index_elements=["id"],
                    update_columns=["status"],
                )
            )
    with any_catalog.session() as session:
        session.execute(
            update(Artwork).where(Artwork.id % 2 == 0).values(status="gone", failure_cause="http_404")
        )
    with any_catalog.engine.connect() as connection:
        expected = status_counts.exact(connection)
    assert _delta_rows(any_catalog) > len(expected)
    removed = status_counts.fold(any_catalog.engine)
    assert _delta_rows(any_catalog) == len(expected)
    assert removed > 0
    _assert_counts_match(any_catalog)
    assert status_counts.fold(any_catalog.engine) == 0  # folded already


def test_concurrent_writers_and_folds_keep_counts_exact(any_catalog: Catalog) -> None:
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for step in range(25):
                ids = sorted(rng.sample(range(1, 400), 20))  # rows locked in one order: no deadlock
                if step % 3 == 2:
                    with any_catalog.session() as session:
                        session.execute(delete(Artwork).where(Artwork.id.in_(ids[:5])))
                with any_catalog.session() as session:
                    session.execute(
                        upsert(
                            session,
                            Artwork,
                            [_row(i, rng) for i in ids],
                            index_elements=["id"],
                            update_columns=["content_type", "status", "failure_cause"],
                        )
                    )
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    def folder() -> None:
        try:
            for _ in range(15):
                status_counts.fold(any_catalog.engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    threads += [threading.Thread(target=folder) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _assert_counts_match(any_catalog)
    status_counts.fold(any_catalog.engine)
    _assert_counts_match(any_catalog)


def _triggers(url: str) -> set[str]:
    catalog = Catalog(url)
    try:
        with catalog.engine.connect() as connection:
            if catalog.dialect == "postgresql":
                query = (
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'artwork'::regclass AND NOT tgisinternal"
                )
            else:
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'artwork'"
            return {name for (name,) in connection.execute(text(query))}
    finally:
        catalog.dispose()


def _seed_check(url: str) -> None:
    """Rows written before migration 0007 are counted by its seed; the triggers exist at head."""
    migrate.command.downgrade(migrate.alembic_config(url), "0006")
    catalog = Catalog(url)
    rng = random.Random(1)
    with catalog.session() as session:
        session.execute(
            upsert(
                session,
                Artwork,
                [_row(i, rng) for i in range(1, 201)],
                index_elements=["id"],
                update_columns=["status"],
            )
        )
    catalog.dispose()
    migrate.upgrade(url)
    assert {
        "artwork_status_counts_insert",
        "artwork_status_counts_update",
        "artwork_status_counts_delete",
    } <= _triggers(url)
    catalog = Catalog(url)
    try:
        _assert_counts_match(catalog)
        with catalog.session() as session:
            session.execute(
                update(Artwork).where(Artwork.id < 50).values(status="processed", failure_cause=None)
            )
        _assert_counts_match(catalog)
    finally:
        catalog.dispose()


def test_migration_seeds_counts_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    migrate.upgrade(url)
    _seed_check(url)


def test_migration_seeds_counts_on_postgresql(postgres_url: str) -> None:
    _seed_check(postgres_url)
    assert "artwork_status_counts_truncate" in _triggers(postgres_url)
    catalog = Catalog(postgres_url)
    try:
        with catalog.engine.begin() as connection:
            connection.execute(text("TRUNCATE artwork CASCADE"))
        with catalog.engine.connect() as connection:
            assert status_counts.read(connection).counts == {} == status_counts.exact(connection)
    finally:
        catalog.dispose()


def test_import_leaves_one_delta_row_per_group(any_catalog: Catalog) -> None:
    def line(content_id: int) -> str:
        artworks = [
            {"id": content_id * 10 + n, "type": "poster", "url": f"https://a/{content_id}/{n}.jpg"}
            for n in range(3)
        ]
        return json.dumps({"content_type": "series", "id": content_id, "artworks": artworks})

    report = import_catalog_lines(any_catalog, [line(i) for i in range(1, 41)], batch_size=5)
    assert report.errors == [] and report.artworks_new == 120
    with any_catalog.engine.connect() as connection:
        counts = status_counts.read(connection)
        assert counts.counts == status_counts.exact(connection) == {("series", "pending", None): 120}
    assert counts.rows == 1  # folded after the import's eight batches
