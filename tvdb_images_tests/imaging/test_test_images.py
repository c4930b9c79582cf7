"""The suite's own images: generated the same every time from files inside installed packages, named
like the shared corpus, and a parametrized test can never quietly lose its cases."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from tvdb_images_tests.support.images import (
    BAD_CAUSES,
    TVDB_PHOTOS,
    corpus_files,
    corpus_root,
    corpus_roots,
    generated_corpus,
)
from tvdb_images_tests.support.images.bad import bad_files
from tvdb_images_tests.support.images.edge import edge_files
from tvdb_images_tests.support.images.photos import SAMPLES, tvdb_files

ROOT = Path(__file__).resolve().parents[2]


def test_generation_is_deterministic() -> None:
    built = {
        f"{folder}/{name}": hashlib.sha256(data).hexdigest()
        for folder, files in (("tvdb", tvdb_files()), ("edge", edge_files()), ("bad", bad_files()))
        for name, data in files.items()
    }
    on_disk = {
        relative: hashlib.sha256((generated_corpus() / relative).read_bytes()).hexdigest()
        for relative in corpus_files(generated_corpus(), "tvdb", "edge", "bad")
    }
    assert built == on_disk


def test_photographs_come_from_the_samples_bundled_in_scikit_image() -> None:
    bundled = {path.stem for path in Path(skimage.data.__file__).parent.iterdir()}
    assert set(SAMPLES) <= bundled, "every sample must ship in the wheel (no download)"
    assert {sample for sample, _, _ in TVDB_PHOTOS.values()} <= set(SAMPLES)


@pytest.mark.parametrize("root", corpus_roots())
def test_the_generated_corpus_has_every_file_the_shared_one_has(root: str) -> None:
    """Tests written against the shared corpus's names find each of them in the generated one."""
    names = set(corpus_files(corpus_root(root), "tvdb", "edge", "bad"))
    assert names <= set(corpus_files(generated_corpus(), "tvdb", "edge", "bad"))
    assert {f"bad/{name}" for name in BAD_CAUSES} >= {n for n in names if n.startswith("bad/")}


def test_tvdb_shapes() -> None:
    for name, (_, width, height) in TVDB_PHOTOS.items():
        with Image.open(generated_corpus() / "tvdb" / name) as image:
            assert image.size == (width, height)


def test_an_empty_parameter_set_fails_collection(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('x', [])\ndef test_nothing(x):\n    pass\n"
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ROOT / "pyproject.toml"),
    ]
    finished = subprocess.run(
        [*command, "--rootdir", str(tmp_path), str(tmp_path / "test_empty.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2, finished.stdout  # interrupted: an error during collection
    assert "Empty parameter set in 'test_nothing'" in finished.stdout
