"""The directory where `tvdb-images serve`'s workers keep their metrics files (prometheus-client's
multiprocess mode), one per deployment.

With PROMETHEUS_MULTIPROC_DIR set, that directory is used and emptied at start: files left by an
earlier run would otherwise be added to this one's counts. Without it, a fresh temporary directory is
made and removed at exit. The variable is exported before any worker starts, so every worker's
prometheus-client writes there. The supervisor calls `mark_process_dead` for each worker it replaces,
so a dead worker's live gauges (the byte cache size) stop counting; its counters stay in the totals.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Read by prometheus-client when it is imported: this module does not import it, so the supervisor can
# set the variable first.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory(enabled: bool) -> Iterator[Path | None]:
    """The deployment's metrics directory for as long as the server runs; None with metrics off."""
    if not enabled:
        os.environ.pop(MULTIPROC_ENV, None)
        yield None
        return
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="tvdb-images-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def mark_dead(pids: set[int]) -> None:
    """Forget the live gauges of worker processes that have exited."""
    if not pids or not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess

    for pid in pids:
        multiprocess.mark_process_dead(pid)
