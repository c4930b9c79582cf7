"""What a pipeline stage did, in numbers an operator or analyst can read (and Dagster can record)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageReport:
    """Counts, bytes, failures by cause and where the time went, for one stage over one scope."""

    stage: str
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    objects_written: int = 0
    failures_by_cause: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    seconds_by_phase: Counter[str] = field(default_factory=Counter)
    # CPU the worker threads spent in each phase: unlike wall seconds, not inflated by waiting for a
    # core or a socket, so it tells where a sync's processor time goes.
    cpu_seconds_by_phase: Counter[str] = field(default_factory=Counter)
    elapsed_seconds: float = 0.0
    by_partition: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def attempted(self) -> int:
        return self.succeeded + self.failed

    @property
    def images_per_second(self) -> float:
        return self.succeeded / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def add_failure(self, cause: str, detail: str) -> None:
        with self._lock:
            self.failed += 1
            self.failures_by_cause[cause] += 1
            self.failure_examples.setdefault(cause, detail[:300])

    def add_time(self, phase: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        with self._lock:
            self.seconds_by_phase[phase] += seconds
            self.cpu_seconds_by_phase[phase] += cpu_seconds

    @contextmanager
    def timed(self, phase: str):  # type: ignore[no-untyped-def]
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add_time(phase, time.perf_counter() - start, time.thread_time() - cpu_start)

    def merge(self, other: StageReport) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.skipped += other.skipped
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.objects_written += other.objects_written
        self.failures_by_cause.update(other.failures_by_cause)
        for cause, detail in other.failure_examples.items():
            self.failure_examples.setdefault(cause, detail)
        self.seconds_by_phase.update(other.seconds_by_phase)
        self.cpu_seconds_by_phase.update(other.cpu_seconds_by_phase)
        self.elapsed_seconds += other.elapsed_seconds
        self.by_partition.update(other.by_partition)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
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
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
        }
