"""Where the shared image corpus would be: `../shared/corpus` from the repository root, or
TVDB_IMAGES_CORPUS_DIR. It is optional: tests read it in place, in addition to the images they generate
(tvdb_images_tests/support/images), and never copy it into the project; the benchmarks read it."""

from __future__ import annotations

import os
from pathlib import Path

CORPUS_DIR = Path(
    os.environ.get("TVDB_IMAGES_CORPUS_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
)
