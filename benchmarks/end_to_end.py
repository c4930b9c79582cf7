"""A real sync through Dagster: loopback origin -> download -> render -> SeaweedFS S3 + PostgreSQL.

    python -m benchmarks.end_to_end [--artworks 2002] [--executor in_process|job]
                                    [--concurrent-runs 2] [--chunk 64]

The catalog holds `--artworks` artworks, the `tvdb/` corpus repeated under distinct URLs, one content
item each, so they spread over the 1,280 partitions like a real catalog. The sync is what an operator's
backfill does: `sync_images` over partition ranges of `--chunk` partitions (the backfill policy's 64),
each run in a new process as the run launcher starts it, `--concurrent-runs` at a time (the deployed
dagster.yaml lets two runs tagged for the TVDB host run at once). `in_process` calls
`execute_in_process`; `job` calls `execute_job` with the job's own executor, as a launched run does
(the code location sets Dagster's in-process executor, so both run the steps inside the run process).

Reported: images per second (wall clock over the whole backfill) against the engine's two-core
throughput measured in this process just before the sync, the time split by phase from the stage
reports (thread-seconds summed over workers) and by stage (wall), the rest of each run's time
(Dagster and the asset checks) and each run process's start (Python, Dagster and code imports), peak
memory of the sync's processes (SeaweedFS excluded), and the
CPU each process used.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import dagster as dg
import psutil

from benchmarks.common import machine, median, table, write_results
from benchmarks.engine import corpus
from benchmarks.machine_load import PeakMemory, machine_busy_cores, raise_priority, sample
from benchmarks.parallel import run_threads
from benchmarks.stack import import_corpus_catalog, running_stack
from tvdb_images.catalog import work
from tvdb_images.config import load_settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.requests import RANGE_END_TAG, RANGE_START_TAG, partition_ranges
from tvdb_images.imaging import RenderSettings
from tvdb_images_tests.corpus import CORPUS_DIR

STAGES = ("source_images", "image_renditions")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sync_images_job() -> dg.JobDefinition:
    """`sync_images` built from the environment, as a run process (and `execute_job`) loads it."""
    return build_definitions(load_settings()).resolve_job_def("sync_images")


def engine_two_core_throughput(method: int, runs: int = 3) -> tuple[float, float]:
    """Images per second of `render_renditions` on two threads over the corpus (twice), median of runs,
    and the CPU seconds it spent per image."""
    settings = RenderSettings(webp_method=method)
    tasks = [(data, settings) for _ in range(2) for data in corpus(CORPUS_DIR / "tvdb").values()]
    run_threads(tasks[:4], 2)
    rates, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        run_threads(tasks, 2)
        rates.append(len(tasks) / (time.perf_counter() - started))
        cpu.append((time.process_time() - cpu_started) / len(tasks))
    return median(rates), median(cpu)


def own_peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def execute_range(start: str, end: str, executor: str, dagster_home: str) -> dict[str, Any]:
    """One run of `sync_images` over a partition range, in a fresh process as a run launcher starts it."""
    instance = dg.DagsterInstance.local_temp(tempdir=dagster_home)
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end}
    started = time.perf_counter()
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
        "wall_seconds": time.perf_counter() - started,
        # The kernel's high-water mark of this process's own memory (VmHWM; ru_maxrss would also count
        # the parent's memory at fork time), and an upper bound for its step processes, if any.
        "peak_rss_mb": own_peak_rss_mb(),
        # From the process's start: Python, Dagster and the code location imported, then the run.
        "process_seconds": time.time() - psutil.Process().create_time(),
        "step_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3,
    }


def run_backfill(
    ranges: list[tuple[str, str]], executor: str, dagster_home: str, concurrent_runs: int
) -> list[dict[str, Any]]:
    """The backfill's runs, `concurrent_runs` at a time, each in its own new process."""
    runs = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=concurrent_runs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(execute_range, start, end, executor, dagster_home) for start, end in ranges]
        for future in as_completed(futures):
            run = future.result()
            runs.append(run)
            first, last = run["range"]
            print(f"  {first} .. {last}: {run['wall_seconds']:.1f} s, success={run['success']}", flush=True)
    return runs


def stage_reports(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per stage: succeeded, wall seconds and seconds by phase, summed over the runs (one record each)."""
    totals: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        records = instance.fetch_materializations(dg.AssetKey(stage), limit=10_000).records
        by_run = {r.run_id: r.asset_materialization.metadata for r in records if r.run_id in run_ids}
        phases: Counter[str] = Counter()
        for metadata in by_run.values():
            phases.update(metadata["seconds_by_phase"].value)
        totals[stage] = {
            "succeeded": sum(m["succeeded"].value for m in by_run.values()),
            "failed": sum(m["failed"].value for m in by_run.values()),
            "wall_seconds": sum(m["elapsed_seconds"].value for m in by_run.values()),
            "seconds_by_phase": {k: round(v, 2) for k, v in phases.items()},
            "bytes_in": sum(m["bytes_in"].value for m in by_run.values()),
            "bytes_out": sum(m["bytes_out"].value for m in by_run.values()),
        }
    return totals


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=2002)
    parser.add_argument(
        "--executor",
        choices=("in_process", "job"),
        default="in_process",
        help="execute_in_process, or execute_job with the job's own executor (as a launched run)",
    )
    parser.add_argument(
        "--concurrent-runs", type=int, default=2, help="runs at once (dagster.yaml allows 2 tvdb runs)"
    )
    parser.add_argument("--chunk", type=int, default=64, help="partitions per run (the backfill policy's)")
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--method", type=int, default=4)
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    args = parser.parse_args()
    niceness = raise_priority(args.priority)
    context = machine() | {"niceness": niceness}
    print(f"load average {context['load_average']}", flush=True)

    with running_stack("bench_e2e") as stack, tempfile.TemporaryDirectory() as dagster_home:
        import_corpus_catalog(stack.catalog, stack.origin_url, args.artworks)
        os.environ.update(stack.env(RENDER_WORKERS=args.render_workers, WEBP_METHOD=args.method))
        with stack.catalog.session() as session:
            partitions = work.partitions_with_work(session, max_attempts=5)
        ranges = partition_ranges(partitions, chunk=args.chunk)
        print(f"{args.artworks} artworks in {len(partitions)} partitions -> {len(ranges)} runs", flush=True)
        engine_before, engine_cpu = engine_two_core_throughput(args.method)
        print(f"engine, two threads: {engine_before:.2f} images/s", flush=True)

        instance = dg.DagsterInstance.local_temp(tempdir=dagster_home)
        services = {"seaweedfs": stack.seaweedfs.process.pid} if stack.seaweedfs.process else {}
        service_cpu = {name: cpu_of(pid) for name, pid in services.items()}
        own_cpu = time.process_time()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = sample()
        started = time.perf_counter()
        with PeakMemory(interval=0.25, exclude=set(services.values()), include_root=False) as peak:
            runs = run_backfill(ranges, args.executor, dagster_home, args.concurrent_runs)
        wall = time.perf_counter() - started
        after = sample()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {
            "sync_process": time.process_time() - own_cpu,
            "step_processes": (children_after.ru_utime + children_after.ru_stime)
            - (children_before.ru_utime + children_before.ru_stime),
            **{name: cpu_of(pid) - service_cpu[name] for name, pid in services.items()},
        }
        stages = stage_reports(instance, {r["run_id"] for r in runs})
        # Again after the sync: other programs' load moves wall-clock rates, so the reference is the
        # mean of before and after, and the CPU-based share below does not depend on it at all.
        engine_after, _ = engine_two_core_throughput(args.method)
        engine_rate = (engine_before + engine_after) / 2
        with stack.catalog.session() as session:
            counts = work.count_work(session, work.Scope(), max_attempts=5, signature="-")

    processed = stages["image_renditions"]["succeeded"]
    rate = processed / wall
    stage_wall = sum(s["wall_seconds"] for s in stages.values())
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": args.artworks,
        "executor": args.executor,
        "concurrent_runs": args.concurrent_runs,
        "runs": runs,
        "partitions": len(partitions),
        "wall_seconds": wall,
        "processed": processed,
        "images_per_second": rate,
        "engine_two_core_images_per_second": engine_rate,
        "engine_two_core_images_per_second_before_after": [engine_before, engine_after],
        "share_of_engine": rate / engine_rate,
        "engine_cpu_seconds_per_image": engine_cpu,
        # What the sync's CPU per image allows on two cores of its own, against the engine's.
        "cpu_share_of_engine": engine_cpu / (sum(cpu.values()) / max(processed, 1)),
        "stages": stages,
        "run_seconds": sum(r["wall_seconds"] for r in runs),
        "outside_stages_seconds": sum(r["wall_seconds"] for r in runs) - stage_wall,
        "process_start_seconds": sum(r["process_seconds"] - r["wall_seconds"] for r in runs),
        "cpu_seconds": cpu,
        "cpu_seconds_per_image": sum(cpu.values()) / max(processed, 1),
        "machine_busy_cores": machine_busy_cores(before, after, wall),
        "peak_rss_mb": peak.peak_bytes / 1e6,
        "peak_rss_per_run_process_mb": max(max(r["peak_rss_mb"], r["step_peak_rss_mb"]) for r in runs),
        "catalog_after": counts,
        "target_share_of_engine": 0.7,
    }
    print(report(result))
    variant = (args.executor, args.concurrent_runs, args.chunk) != ("in_process", 2, 64)
    name = (
        f"end_to_end_{args.executor}_{args.concurrent_runs}runs_chunk{args.chunk}"
        if variant
        else "end_to_end"
    )
    path = write_results(name, result)
    print(f"wrote {path}")


def report(result: dict[str, Any]) -> str:
    stages = result["stages"]
    phase_rows = [
        [stage, phase, seconds, f"{seconds / max(result['processed'], 1) * 1000:.1f}"]
        for stage in STAGES
        for phase, seconds in sorted(stages[stage]["seconds_by_phase"].items(), key=lambda kv: -kv[1])
    ]
    return "\n".join(
        [
            f"## End to end: {result['processed']} artworks in {len(result['runs'])} runs"
            f" ({result['executor']})",
            table(
                ["figure", "value"],
                [
                    ["wall seconds", result["wall_seconds"]],
                    ["images/s", result["images_per_second"]],
                    ["engine, two threads, images/s", result["engine_two_core_images_per_second"]],
                    ["share of the engine, wall clock (target >= 70%)", f"{result['share_of_engine']:.1%}"],
                    ["engine CPU s per image", result["engine_cpu_seconds_per_image"]],
                    ["share of the engine, by CPU per image", f"{result['cpu_share_of_engine']:.1%}"],
                    ["source_images wall s", stages["source_images"]["wall_seconds"]],
                    ["image_renditions wall s", stages["image_renditions"]["wall_seconds"]],
                    ["run seconds, summed over runs", result["run_seconds"]],
                    ["  of which outside the stages (Dagster, checks)", result["outside_stages_seconds"]],
                    ["process start and imports, summed over runs", result["process_start_seconds"]],
                    ["machine busy cores", result["machine_busy_cores"]],
                    ["peak RSS, run processes together (sampled), MB", result["peak_rss_mb"]],
                    ["peak RSS of one run process, MB", result["peak_rss_per_run_process_mb"]],
                    ["CPU s per image, all processes", result["cpu_seconds_per_image"]],
                ],
            ),
            "",
            "Time by phase (thread-seconds summed over workers):",
            table(["stage", "phase", "seconds", "ms per image"], phase_rows),
            "",
            "CPU seconds by process: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["cpu_seconds"].items()),
        ]
    )


if __name__ == "__main__":
    main()
