"""Where the shared image corpus lives: `../shared/corpus` from the repository root, or
TVDB_IMAGES_CORPUS_DIR. Tests read it in place; it is never copied into the project."""

from __future__ import annotations

import os
from pathlib import Path

CORPUS_DIR = Path(
    os.environ.get("TVDB_IMAGES_CORPUS_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
)
