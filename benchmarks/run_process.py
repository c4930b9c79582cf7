"""One run of `sync_images` over a partition range, as the process a run launcher starts.

    python -m benchmarks.run_process START END DAGSTER_HOME [in_process|job]

Dagster's run launcher starts a new Python process that imports Dagster and the code location and
executes one run; this module does the same and imports nothing else (no benchmark code, no
contenders), so the process start measured by `benchmarks.end_to_end` is what a deployment pays. It
prints one JSON line describing the run.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

from tvdb_images.config import load_settings
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sync_images_job() -> dg.JobDefinition:
    """`sync_images` built from the environment, as a run process (and `execute_job`) loads it."""
    return build_definitions(load_settings()).resolve_job_def("sync_images")


def own_peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def execute_range(start: str, end: str, dagster_home: str, executor: str) -> dict[str, Any]:
    instance = dg.DagsterInstance.from_config(dagster_home)  # its dagster.yaml: SQLite or PostgreSQL
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end}
    began = time.perf_counter()
    if executor == "in_process":
        result = sync_images_job().execute_in_process(instance=instance, tags=tags, run_config=QUIET)
        success, run_id = result.success, result.run_id
    else:
        with dg.execute_job(
            dg.reconstructable(sync_images_job), instance=instance, tags=tags, run_config=QUIET
        ) as result:
            success, run_id = result.success, result.run_id
    return {
        "range": [start, end],
        "run_id": run_id,
        "success": success,
        "wall_seconds": time.perf_counter() - began,
        # The kernel's high-water mark of this process's own memory, and an upper bound for its step
        # processes, if any.
        "peak_rss_mb": own_peak_rss_mb(),
        "step_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3,
        "cpu_seconds": time.process_time(),
    }


def main() -> None:
    start, end, dagster_home = sys.argv[1:4]
    executor = sys.argv[4] if len(sys.argv) > 4 else "in_process"
    run = execute_range(start, end, dagster_home, executor)
    print(json.dumps(run), flush=True)


if __name__ == "__main__":
    main()
