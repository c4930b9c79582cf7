"""What the demo's sync has done so far: Dagster runs finished, artworks processed or failed, and
throughput. On a terminal a rich progress display (refreshed from the catalog twice a second);
elsewhere (logs, CI, pipes) one plain line per finished run."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, or_, select

from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.wording import plural

_DONE_FAILED = (ArtworkStatus.FAILED.value, ArtworkStatus.GONE.value)


@dataclass(frozen=True)
class SyncCounts:
    """Artwork work since `since`: downloads attempted, artworks processed, artworks failed."""

    downloads: int
    processed: int
    failed: int

    @property
    def done(self) -> int:
        return self.processed + self.failed


def artworks_to_sync(catalog: Catalog, *, max_attempts: int) -> int:
    """Artwork a sync will work on: to download (new, changed, retry due) or to render."""
    condition = or_(queue.download_condition(max_attempts), Artwork.status == ArtworkStatus.DOWNLOADED.value)
    with catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(Artwork).where(condition)) or 0)


def counts_since(catalog: Catalog, since: datetime) -> SyncCounts:
    with catalog.session() as session:
        attempted = Artwork.last_attempt_at >= since
        downloads = session.scalar(select(func.count()).select_from(Artwork).where(attempted))
        processed = session.scalar(
            select(func.count()).select_from(Artwork).where(Artwork.processed_at >= since)
        )
        failed = session.scalar(
            select(func.count()).select_from(Artwork).where(attempted, Artwork.status.in_(_DONE_FAILED))
        )
    return SyncCounts(int(downloads or 0), int(processed or 0), int(failed or 0))


class SyncProgress:
    """Progress of the demo's runs; use as a context manager around them and call `run_finished`."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        since: datetime,
        runs: int,
        artworks: int,
        stream: TextIO | None = None,
        interval: float = 0.5,
    ) -> None:
        self._catalog = catalog
        self._since = since
        self._runs = runs
        self._artworks = artworks
        self._stream = stream or sys.stdout
        self._interval = interval
        self._console = Console(file=self._stream)
        self._runs_done = 0
        self._runs_failed = 0
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._progress: Progress | None = None
        self.counts = SyncCounts(0, 0, 0)

    @property
    def interactive(self) -> bool:
        return self._console.is_terminal

    def __enter__(self) -> SyncProgress:
        self._started = time.perf_counter()
        if self.interactive:
            self._progress = Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._run_task = self._progress.add_task("Dagster runs", total=self._runs, detail="")
            self._artwork_task = self._progress.add_task("artworks", total=self._artworks, detail="")
            self._progress.start()
            self._poller = threading.Thread(target=self._poll, name="demo-progress", daemon=True)
            self._poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self._refresh()
        if self._progress is not None:
            self._progress.stop()

    def run_finished(self, success: bool) -> None:
        self._runs_done += 1
        self._runs_failed += 0 if success else 1
        self._refresh()
        if self._progress is None:
            outcome = "succeeded" if success else "FAILED"
            print(f"  run {self._runs_done}/{self._runs} {outcome}: {self.describe()}", file=self._stream)
            self._stream.flush()

    def describe(self) -> str:
        """One line: artworks done of those to do, failures, throughput."""
        counts = self.counts
        seconds = max(time.perf_counter() - self._started, 1e-6)
        text = (
            f"{counts.done}/{plural(self._artworks, 'artwork')} done, {counts.failed} failed, "
            f"{counts.done / seconds:.1f} artworks/s"
        )
        if self._runs_failed:
            text += f", {plural(self._runs_failed, 'run')} failed"
        return text

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self._refresh()

    def _refresh(self) -> None:
        try:
            self.counts = counts_since(self._catalog, self._since)
        except Exception:  # a busy or restarting database: keep the last counts, try again
            return
        if self._progress is not None:
            seconds = max(time.perf_counter() - self._started, 1e-6)
            failures = f"{self.counts.failed} failed, " if self.counts.failed else ""
            self._progress.update(
                self._artwork_task,
                completed=self.counts.done,
                detail=f"{failures}{self.counts.done / seconds:.1f}/s",
            )
            runs_detail = f"{self._runs_failed} failed" if self._runs_failed else ""
            self._progress.update(self._run_task, completed=self._runs_done, detail=runs_detail)
            self._progress.refresh()  # drawn now, not at rich's next tick: every finished run shows
