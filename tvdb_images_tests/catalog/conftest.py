"""Fixtures of the catalog tests: the catalog after its first sync (support/catalog_life.py), on the
embedded default and on production parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tvdb_images.storage import Bucket
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.catalog_life import BAD_ARTWORK, ITEMS, Setup, jpeg
from tvdb_images_tests.support.origins import LoopbackOrigin, respond


@pytest.fixture
def life_origin(tmp_path: Path) -> Iterator[LoopbackOrigin]:
    directory = tmp_path / "origin"
    directory.mkdir()
    for artworks in ITEMS.values():
        for artwork_id, _, _ in artworks:
            (directory / f"{artwork_id}.jpg").write_bytes(jpeg(artwork_id))
    with LoopbackOrigin(directory) as origin:
        origin.route(
            f"/{BAD_ARTWORK}.jpg", respond(200, b"<html>sorry</html>", {"Content-Type": "image/jpeg"})
        )
        yield origin


@pytest.fixture(params=["embedded", "production"])
def life(request: pytest.FixtureRequest, life_origin: LoopbackOrigin, tmp_path: Path) -> Setup:
    if request.param == "embedded":
        names = {Bucket.ORIGINALS: "tvdb-originals", Bucket.THUMBNAILS: "tvdb-thumbnails"}
        store = LocalObjectStore(tmp_path / "storage", bucket_names=names)
        store.ensure_buckets()
        return Setup(request.getfixturevalue("sqlite_catalog"), store, life_origin, "embedded")
    return Setup(
        request.getfixturevalue("postgres_catalog"),
        request.getfixturevalue("s3_store"),
        life_origin,
        "production",
    )


@pytest.fixture
def life_cli(life: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    """The parametrized catalog and store, named by the environment the command line reads."""
    monkeypatch.setenv("DATABASE_URL", life.catalog.url)
    monkeypatch.setenv("TVDB_IMAGES_DATA_DIR", str(tmp_path / "data"))
    return life
