"""What the reliability tests tried and how each case ended, collected while they run.

Tests call `record(section, **columns)` with what they observed (never with expected values), and the
rows are appended as JSON lines to the file named by TVDB_IMAGES_RELIABILITY_RESULTS when it is set.
`python -m tvdb_images_tests.support.reliability_report` sets it, runs the tests and turns the rows into
docs/reliability.md; in a plain `pytest` run nothing is written.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

RESULTS_ENV = "TVDB_IMAGES_RELIABILITY_RESULTS"

_lock = threading.Lock()


def record(section: str, **columns: Any) -> None:
    """Add one row to `section` of the published table (a no-op unless results are being collected)."""
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    line = json.dumps({"section": section, **columns}, default=str, sort_keys=False)
    with _lock, Path(target).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
