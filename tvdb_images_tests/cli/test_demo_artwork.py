"""The demo's artwork comes from the package alone: every file its catalog names is written from the
shipped photographs, in TVDB's shapes, the same bytes every time, and the bad ones are refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from tvdb_images.demo.artwork import ARTWORK, CLEAR_LOGO, write_artwork
from tvdb_images.demo.catalog import BAD_SOURCES, find_corpus, write_demo_catalog
from tvdb_images.imaging import ImageRejected, ValidationLimits, validate_source


def digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def artwork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artwork(tmp_path_factory.mktemp("demo-origin"))


def test_every_url_of_the_demo_catalog_is_written(artwork: Path, tmp_path: Path) -> None:
    catalog = write_demo_catalog(tmp_path / "catalog.jsonl", "http://127.0.0.1:1")
    paths = [
        entry["url"].removeprefix("http://127.0.0.1:1/")
        for line in catalog.path.read_text().splitlines()
        for entry in json.loads(line)["artworks"]
    ]
    missing = {path for path in paths if not (artwork / path).is_file()}
    assert missing == {path for _, _, path, cause in BAD_SOURCES if cause == "gone"}


def test_artwork_has_tvdb_shapes_and_real_pictures(artwork: Path) -> None:
    for name, (_, width, height) in ARTWORK.items():
        with Image.open(artwork / "tvdb" / name) as image:
            assert (image.format, image.size) == ("JPEG", (width, height))
            assert image.info.get("progressive", 0) == ("progressive" in name)
            # A photograph, not a flat fill: many distinct colours.
            assert len(image.convert("RGB").resize((64, 64)).getcolors(4096) or range(4097)) > 1000
    name, width, height = CLEAR_LOGO
    with Image.open(artwork / "tvdb" / name) as logo:
        assert (logo.mode, logo.size) == ("RGBA", (width, height))
        assert logo.getchannel("A").getextrema() == (0, 255)  # real transparency around the title


def test_artwork_is_the_same_bytes_every_time(artwork: Path, tmp_path: Path) -> None:
    assert digests(write_artwork(tmp_path)) == digests(artwork)


def test_good_artwork_validates_and_bad_sources_are_refused_with_their_cause(artwork: Path) -> None:
    for path in sorted((artwork / "tvdb").iterdir()):
        validate_source(path.read_bytes(), ValidationLimits())
    for _, _, origin_path, cause in BAD_SOURCES:
        if cause == "gone":
            continue
        with pytest.raises(ImageRejected) as caught:
            validate_source((artwork / origin_path).read_bytes(), ValidationLimits())
        assert caught.value.cause == cause, origin_path


def test_the_demo_looks_beside_the_checkout_for_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "shared" / "corpus" / "tvdb").mkdir(parents=True)
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")
    monkeypatch.delenv("TVDB_IMAGES_CORPUS_DIR", raising=False)
    assert find_corpus() is None
    monkeypatch.setenv("TVDB_IMAGES_CORPUS_DIR", str(tmp_path / "shared" / "corpus"))
    assert find_corpus() == (tmp_path / "shared" / "corpus").resolve()
