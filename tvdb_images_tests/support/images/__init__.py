"""The test suite's own image corpus, generated deterministically; the shared one is an addition.

`generated_corpus()` writes tvdb/ (TVDB-shaped real photographs), edge/ and bad/ into a temporary
directory once per process, laid out and named like the shared corpus (`../shared/corpus` or
TVDB_IMAGES_CORPUS_DIR), so every test can read either. The shared corpus is never required: when it
is present, `external_corpus()` returns it and the tests marked `corpus` run on it as well.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pytest

from tvdb_images_tests.support.corpus import CORPUS_DIR
from tvdb_images_tests.support.images.bad import BAD_CAUSES, bad_files
from tvdb_images_tests.support.images.edge import edge_files
from tvdb_images_tests.support.images.photos import TVDB_PHOTOS, tvdb_files

__all__ = [
    "BAD_CAUSES",
    "SHARED",
    "TVDB_PHOTOS",
    "corpus_files",
    "corpus_root",
    "corpus_roots",
    "external_corpus",
    "generated_corpus",
    "image_cases",
    "image_path",
]


@cache
def generated_corpus() -> Path:
    """The generated corpus's root (built on first use, removed when the process exits)."""
    root = Path(tempfile.mkdtemp(prefix="tvdb-images-test-images-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for folder, files in (("tvdb", tvdb_files()), ("edge", edge_files()), ("bad", bad_files())):
        (root / folder).mkdir()
        for name, data in files.items():
            (root / folder / name).write_bytes(data)
    return root


def external_corpus() -> Path | None:
    """The shared corpus, if one is beside the checkout or named by TVDB_IMAGES_CORPUS_DIR."""
    return CORPUS_DIR if (CORPUS_DIR / "tvdb").is_dir() else None


def corpus_files(root: Path, *folders: str) -> list[str]:
    """Relative paths ("edge/4.webp") of the image files under `folders` of a corpus root."""
    return sorted(
        f"{folder}/{path.name}"
        for folder in folders
        for path in (root / folder).glob("*")
        if path.is_file() and path.suffix != ".md"
    )


SHARED = "shared/"  # prefix of a case that reads the shared corpus: "shared/edge/4.webp"


def image_path(case: str) -> Path:
    """The file a case names: "edge/4.webp" in the generated corpus, "shared/edge/4.webp" in the shared."""
    if case.startswith(SHARED):
        root = external_corpus()
        if root is None:
            raise FileNotFoundError(f"{case}: no shared corpus at {CORPUS_DIR}")
        return root / case.removeprefix(SHARED)
    return generated_corpus() / case


def image_cases(*relative: str, folders: tuple[str, ...] = ()) -> list[object]:
    """Parameters for a test over corpus files: the generated ones, then the same files in the shared
    corpus (marked `corpus`) where it is present and has them. `folders` adds every file under them."""
    missing = [r for r in relative if not (generated_corpus() / r).is_file()]
    if missing:
        raise FileNotFoundError(f"not in the generated corpus: {missing}")
    generated = sorted({*relative, *corpus_files(generated_corpus(), *folders)})
    cases: list[object] = list(generated)
    root = external_corpus()
    if root is not None:
        shared = sorted({*(r for r in relative if (root / r).is_file()), *corpus_files(root, *folders)})
        cases += [pytest.param(SHARED + r, id=SHARED + r, marks=pytest.mark.corpus) for r in shared]
    return cases


def corpus_roots() -> list[object]:
    """Prefixes for a test that runs once per corpus: "" (generated), then "shared/" (marked `corpus`)
    when the shared corpus is present."""
    roots: list[object] = [""]
    if external_corpus() is not None:
        roots.append(pytest.param(SHARED, id="shared", marks=pytest.mark.corpus))
    return roots


def corpus_root(prefix: str) -> Path:
    """The directory a `corpus_roots()` prefix stands for."""
    return image_path(prefix + "tvdb").parent
