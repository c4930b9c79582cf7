"""What a pipeline stage did, in numbers an operator or analyst can read (and Dagster can record).

A stage keeps its totals for the whole run and, beside them, the same counts for each partition
(content type x shard) it touched, so each partition's record tells what happened to its own artwork.
Work done on a worker thread is credited to the partition that thread is `working_on`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    """Counts, bytes, failures by cause and where the time went, over some set of artworks."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    objects_written: int = 0
    failures_by_cause: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    seconds_by_phase: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # CPU the worker threads spent in each phase: unlike wall seconds, not inflated by waiting for a
    # core or a socket, so it tells where a sync's processor time goes.
    cpu_seconds_by_phase: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def attempted(self) -> int:
        return self.succeeded + self.failed

    def _add(
        self,
        *,
        succeeded: int = 0,
        skipped: int = 0,
        bytes_in: int = 0,
        bytes_out: int = 0,
        objects_written: int = 0,
    ) -> None:
        self.succeeded += succeeded
        self.skipped += skipped
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        self.objects_written += objects_written

    def _add_failure(self, cause: str, detail: str) -> None:
        self.failed += 1
        self.failures_by_cause[cause] += 1
        self.failure_examples.setdefault(cause, detail[:300])

    def _add_time(self, phase: str, seconds: float, cpu_seconds: float) -> None:
        self.seconds_by_phase[phase] += seconds
        self.cpu_seconds_by_phase[phase] += cpu_seconds

    def tally_dict(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "objects_written": self.objects_written,
            "failures_by_cause": dict(self.failures_by_cause),
            "failure_examples": dict(self.failure_examples),
            "seconds_by_phase": {k: round(v, 3) for k, v in self.seconds_by_phase.items()},
            "cpu_seconds_by_phase": {k: round(v, 3) for k, v in self.cpu_seconds_by_phase.items()},
        }


@dataclass
class StageReport(Tally):
    """One stage over one scope: the run's totals, and a `Tally` for each partition it touched.

    Time spent outside any partition (the batched catalog writes, shared by many partitions) counts
    in the totals only.
    """

    stage: str = ""
    elapsed_seconds: float = 0.0
    by_partition: dict[str, Tally] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _current: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @property
    def images_per_second(self) -> float:
        return self.succeeded / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def partition(self, name: str) -> Tally:
        """The tally of one partition (created empty on first use)."""
        with self._lock:
            return self.by_partition.setdefault(name, Tally())

    @contextmanager
    def working_on(self, partition: str | None) -> Iterator[None]:
        """Credit what this thread records meanwhile (time, bytes) to `partition` as well."""
        previous = getattr(self._current, "partition", None)
        self._current.partition = partition
        try:
            yield
        finally:
            self._current.partition = previous

    def _targets(self, partition: str | None) -> list[Tally]:
        name = partition if partition is not None else getattr(self._current, "partition", None)
        if name is None:
            return [self]
        return [self, self.by_partition.setdefault(name, Tally())]

    def add_success(
        self,
        partition: str | None = None,
        *,
        unchanged: bool = False,
        bytes_in: int = 0,
        bytes_out: int = 0,
        objects_written: int = 0,
    ) -> None:
        """One artwork done (`unchanged`: nothing needed writing)."""
        with self._lock:
            for tally in self._targets(partition):
                tally._add(succeeded=1, skipped=int(unchanged))
                tally._add(bytes_in=bytes_in, bytes_out=bytes_out, objects_written=objects_written)

    def add_bytes(self, *, bytes_in: int = 0, bytes_out: int = 0, objects_written: int = 0) -> None:
        """Bytes read and written for the artwork this thread is working on."""
        with self._lock:
            for tally in self._targets(None):
                tally._add(bytes_in=bytes_in, bytes_out=bytes_out, objects_written=objects_written)

    def add_failure(self, cause: str, detail: str, partition: str | None = None) -> None:
        with self._lock:
            for tally in self._targets(partition):
                tally._add_failure(cause, detail)

    def add_time(self, phase: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        with self._lock:
            for tally in self._targets(None):
                tally._add_time(phase, seconds, cpu_seconds)

    @contextmanager
    def timed(self, phase: str):
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add_time(phase, time.perf_counter() - start, time.thread_time() - cpu_start)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            **self.tally_dict(),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
        }
