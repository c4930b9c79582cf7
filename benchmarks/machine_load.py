"""How busy the whole machine was while a benchmark ran, from /proc/stat, and this process tree's memory.

Other programs' CPU use during a run explains a low parallel speed-up better than any guess: when
they take a core, two threads cannot have two.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class CpuSample:
    busy: float  # CPU seconds spent by everything on the machine
    total: float  # CPU seconds available (busy + idle) across all cores


def sample() -> CpuSample:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return CpuSample((total - idle) / tick, total / tick)


def raise_priority(boost: int) -> int:
    """Lower this process's niceness by `boost` when allowed (root), so that wall-clock figures measure
    the software rather than whatever else the machine runs; children started later inherit it.
    Returns the niceness in force."""
    if boost > 0:
        with contextlib.suppress(PermissionError, OSError):
            os.nice(-boost)
    return os.nice(0)


def machine_busy_cores(before: CpuSample, after: CpuSample, wall: float) -> float:
    """Average number of cores the whole machine kept busy between two samples."""
    return (after.busy - before.busy) / wall if wall > 0 else 0.0


class PeakMemory:
    """Samples the resident memory of a process tree (the root unless `include_root` is false, and every
    descendant, less `exclude`d services and their children) in a background thread.

    A sampler, so a spike shorter than `interval` can be missed; children that exit between two samples
    are missed too. For this process alone, `ru_maxrss` gives the exact high-water mark as well.
    """

    def __init__(
        self,
        pid: int | None = None,
        interval: float = 0.05,
        exclude: set[int] | None = None,
        include_root: bool = True,
    ) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.exclude = exclude or set()
        self.include_root = include_root
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def current_bytes(self) -> int:
        total = 0
        excluded = set(self.exclude)
        processes = self.root.children(recursive=True)
        for process in [self.root, *processes] if self.include_root else processes:
            with contextlib.suppress(psutil.Error):
                if process.pid in excluded or process.ppid() in excluded:
                    excluded.add(process.pid)  # a service and whatever it started
                    continue
                total += process.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.interval)
