"""The catalog gauges in /metrics text equal a real GROUP BY over artwork, on SQLite and PostgreSQL,
after writes of every kind: they are read from the trigger-kept counts table, not a scan."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import delete, update

from serving.catalog_gauges import CatalogGauges
from tvdb_images.catalog import status_counts
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork
from tvdb_images.catalog.upsert import upsert
from tvdb_images.config import CONTENT_TYPES
from tvdb_images.pipeline.causes import FAILURE_CAUSES
from tvdb_images_tests.support.metrics_support import samples

BACKLOG = "tvdb_images_catalog_backlog_artworks"
PROCESSED = "tvdb_images_catalog_processed_artworks"


def _rows(rng: random.Random, ids: range) -> list[dict[str, object]]:
    rows = []
    for artwork_id in ids:
        status = rng.choice(("pending", "downloaded", "processed", "processed", "failed", "gone"))
        rows.append(
            {
                "id": artwork_id,
                "content_type": rng.choice(CONTENT_TYPES),
                "content_id": artwork_id,
                "image_type": "poster",
                "source_url": f"https://example.com/{artwork_id}.jpg",
                "status": status,
                "failure_cause": rng.choice(FAILURE_CAUSES) if status in ("failed", "gone") else None,
            }
        )
    return rows


def _assert_gauges_match(catalog: Catalog, gauges: CatalogGauges) -> None:
    registry = CollectorRegistry()
    registry.register(gauges)
    exported = samples(generate_latest(registry).decode())
    with catalog.engine.connect() as connection:
        real = status_counts.exact(connection)
    backlog: dict[tuple[str, str], int] = {}
    processed = dict.fromkeys(CONTENT_TYPES, 0)
    for (content_type, status, cause), n in real.items():
        if status == "processed":
            processed[content_type] += n
        else:
            backlog[status, cause or "none"] = backlog.get((status, cause or "none"), 0) + n
    got_backlog = {
        (dict(labels)["status"], dict(labels)["cause"]): v
        for (name, labels), v in exported.items()
        if name == BACKLOG and v
    }
    got_processed = {
        dict(labels)["content_type"]: v for (name, labels), v in exported.items() if name == PROCESSED
    }
    assert got_backlog == backlog
    assert got_processed == processed


def test_gauges_equal_the_real_counts(any_catalog: Catalog) -> None:
    rng = random.Random(2)
    gauges = CatalogGauges(any_catalog.engine, ttl=0)
    with any_catalog.session() as session:
        session.execute(
            upsert(
                session, Artwork, _rows(rng, range(1, 801)), index_elements=["id"], update_columns=["status"]
            )
        )
    _assert_gauges_match(any_catalog, gauges)
    with any_catalog.session() as session:
        session.execute(update(Artwork).where(Artwork.status == "pending").values(status="processed"))
        session.execute(
            update(Artwork)
            .where(Artwork.id % 7 == 0)
            .values(status="failed", failure_cause=FAILURE_CAUSES[0])
        )
        session.execute(delete(Artwork).where(Artwork.id % 11 == 0))
    _assert_gauges_match(any_catalog, gauges)
    with any_catalog.session() as session:  # re-imported: half new rows, half changed ones
        session.execute(
            upsert(
                session,
                Artwork,
                _rows(rng, range(400, 1201)),
                index_elements=["id"],
                update_columns=["content_type", "status", "failure_cause"],
            )
        )
    _assert_gauges_match(any_catalog, gauges)
    status_counts.fold(any_catalog.engine)
    _assert_gauges_match(any_catalog, gauges)


def _delta_rows(catalog: Catalog) -> int:
    with catalog.engine.connect() as connection:
        return status_counts.read(connection).rows


def test_a_scrape_past_the_threshold_folds_in_the_background(any_catalog: Catalog) -> None:
    rng = random.Random(4)
    for start in range(1, 200, 10):  # twenty statements: deltas pile up
        with any_catalog.session() as session:
            rows = _rows(rng, range(start, start + 10))
            session.execute(upsert(session, Artwork, rows, index_elements=["id"], update_columns=["status"]))
    piled = _delta_rows(any_catalog)
    gauges = CatalogGauges(any_catalog.engine, ttl=0, fold_above=piled)
    _assert_gauges_match(any_catalog, gauges)  # not above the threshold: no fold
    gauges.wait_for_fold()
    assert _delta_rows(any_catalog) == piled
    gauges.fold_above = piled - 1
    _assert_gauges_match(any_catalog, gauges)
    gauges.wait_for_fold(timeout=30)
    with any_catalog.engine.connect() as connection:
        groups = len(status_counts.exact(connection))
    assert _delta_rows(any_catalog) == groups < piled
    _assert_gauges_match(any_catalog, gauges)
