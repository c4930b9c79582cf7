"""A real sync through Dagster: loopback origin -> download -> render -> SeaweedFS S3 + PostgreSQL.

    python -m benchmarks.end_to_end [--artworks 2002] [--repeat 3] [--executor in_process|job]
                                    [--concurrent-runs 2] [--chunk 128] [--instance postgres|sqlite]

The catalog holds `--artworks` artworks, the `tvdb/` corpus repeated under distinct URLs, one content
item each, so they spread over the 1,280 partitions like a real catalog. The sync is what an operator's
backfill does: `sync_images` over partition ranges of `--chunk` partitions (the backfill policy's 128),
each run in a new process that imports only Dagster and the code location, as the run launcher starts
it (`benchmarks/run_process.py`), `--concurrent-runs` at a time (the deployed dagster.yaml lets two
runs tagged for the TVDB host run at once), with Dagster's own storage on PostgreSQL as
dagster/dagster.yaml deploys it (`--instance sqlite`: the embedded default). `in_process` calls
`execute_in_process`; `job` calls `execute_job` with the job's own executor, as a launched run does
(the code location sets Dagster's in-process executor, so both run the steps inside the run process).
The whole sync runs `--repeat` times, each on a fresh catalog, buckets and Dagster storage.

Reported per sync: images per second (wall clock over the whole backfill) against the engine's
two-core throughput measured in this process just before and after the sync, the time split by phase
from the stage reports (thread-seconds summed over workers), by stage and by Dagster step (wall), the
events Dagster recorded, the rest of each run's time (Dagster and the asset checks) and each run
process's start (Python, Dagster and code imports), peak memory of the sync's processes (SeaweedFS
excluded), and the CPU each process used; then the medians over the syncs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
import yaml

from benchmarks.common import machine, median, table, write_results
from benchmarks.engine import corpus
from benchmarks.machine_load import PeakMemory, machine_busy_cores, raise_priority, sample
from benchmarks.parallel import run_threads
from benchmarks.stack import import_corpus_catalog, running_stack
from tvdb_images.catalog import queue
from tvdb_images.catalog.scope import Scope
from tvdb_images.defs.metadata import parse_run_totals
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN, artwork_partitions
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.imaging import RenderSettings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.corpus import CORPUS_DIR
from tvdb_images_tests.support.stack import deployed_dagster_storage, image_environment

STAGES = ("source_images", "image_renditions")
SUMMARY_KEYS = (
    "images_per_second",
    "engine_two_core_images_per_second",
    "share_of_engine",
    "cpu_share_of_engine",
    "cpu_seconds_per_image",
    "wall_seconds",
)
ROOT = Path(__file__).resolve().parents[1]
TELEMETRY_OFF = "telemetry:\n  enabled: false\n"


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


def run_backfill(
    ranges: list[tuple[str, str]], executor: str, dagster_home: str, concurrent_runs: int
) -> list[dict[str, Any]]:
    """The backfill's runs, `concurrent_runs` at a time, each in a new process that imports only
    Dagster and the code location (`benchmarks.run_process`), as a run launcher starts it."""

    def one_run(start: str, end: str) -> dict[str, Any]:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.run_process", start, end, dagster_home, executor],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"run {start}..{end} exited {done.returncode}: {done.stderr[-2000:]}")
        run = json.loads(done.stdout.strip().splitlines()[-1])
        run["process_seconds"] = time.perf_counter() - began
        return run

    runs = []
    with ThreadPoolExecutor(max_workers=concurrent_runs) as pool:
        futures = [pool.submit(one_run, start, end) for start, end in ranges]
        for future in as_completed(futures):
            run = future.result()
            runs.append(run)
            first, last = run["range"]
            print(f"  {first} .. {last}: {run['wall_seconds']:.1f} s, success={run['success']}", flush=True)
    return runs


@contextmanager
def dagster_storage_on_postgres(dagster_home: Path) -> Iterator[None]:
    """Dagster's runs and event log in a PostgreSQL database of their own, as dagster/dagster.yaml
    deploys them (its `storage` section: PooledPostgresStorage, psycopg2 driver), dropped afterwards."""
    name = services.unique_name("bench_e2e_dagster")
    url = services.create_database(name)
    try:
        storage = deployed_dagster_storage(url)
        (dagster_home / "dagster.yaml").write_text(TELEMETRY_OFF + yaml.safe_dump({"storage": storage}))
        yield
    finally:
        services.drop_database(name)


def run_events(instance: dg.DagsterInstance, run_ids: set[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Wall seconds of each step (assets and checks), from STEP_START to its end, summed over runs;
    and how many events of each type the runs recorded in Dagster's event log."""
    ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    seconds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for run_id in run_ids:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                counts["log message"] += 1
                continue
            counts[event.event_type_value] += 1
            if entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif event.event_type in ends and entry.step_key in started:
                seconds[entry.step_key] += entry.timestamp - started.pop(entry.step_key)
    return {key: round(value, 2) for key, value in seconds.most_common()}, dict(counts.most_common())


def stage_reports(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per stage: succeeded, wall seconds, and wall and CPU seconds by phase, summed over the runs,
    from the totals each run logs once per stage (its partitions' materializations carry their own)."""
    totals: dict[str, dict[str, Any]] = {
        stage: {"succeeded": 0, "failed": 0, "wall_seconds": 0.0, "bytes_in": 0, "bytes_out": 0}
        for stage in STAGES
    }
    phases: dict[str, Counter[str]] = {stage: Counter() for stage in STAGES}
    cpu_phases: dict[str, Counter[str]] = {stage: Counter() for stage in STAGES}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id):
            report = parse_run_totals(entry.user_message) if entry.step_key in STAGES else None
            if report is None:
                continue
            stage = entry.step_key
            for name in ("succeeded", "failed", "bytes_in", "bytes_out"):
                totals[stage][name] += report[name]
            totals[stage]["wall_seconds"] += report["elapsed_seconds"]
            phases[stage].update(report["seconds_by_phase"])
            cpu_phases[stage].update(report["cpu_seconds_by_phase"])
    for stage in STAGES:
        totals[stage]["seconds_by_phase"] = {k: round(v, 2) for k, v in phases[stage].items()}
        totals[stage]["cpu_seconds_by_phase"] = {k: round(v, 2) for k, v in cpu_phases[stage].items()}
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
    parser.add_argument(
        "--chunk", type=int, default=MAX_PARTITIONS_PER_RUN, help="partitions per run (the backfill policy's)"
    )
    parser.add_argument(
        "--instance",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="Dagster's own storage: PostgreSQL as deployed (dagster/dagster.yaml), or the embedded SQLite",
    )
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--method", type=int, default=4)
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    parser.add_argument("--repeat", type=int, default=3, help="whole syncs, each on a fresh catalog; medians")
    args = parser.parse_args()
    niceness = raise_priority(args.priority)
    syncs = []
    for number in range(1, args.repeat + 1):
        print(f"sync {number} of {args.repeat}", flush=True)
        syncs.append(one_sync(args, niceness))
        print(report(syncs[-1]), flush=True)
    shares = [sync["share_of_engine"] for sync in syncs]
    result = sorted(syncs, key=lambda sync: sync["share_of_engine"])[len(syncs) // 2] | {
        "repeats": [
            {key: sync[key] for key in SUMMARY_KEYS} | {"load_average": sync["machine"]["load_average"]}
            for sync in syncs
        ],
        "median_share_of_engine": median(shares),
        "median_cpu_share_of_engine": median([sync["cpu_share_of_engine"] for sync in syncs]),
    }
    print(
        table(
            ["sync", *SUMMARY_KEYS],
            [[i + 1, *(sync[key] for key in SUMMARY_KEYS)] for i, sync in enumerate(syncs)],
        )
    )
    print(
        f"median share of the engine: {result['median_share_of_engine']:.1%} wall clock,"
        f" {result['median_cpu_share_of_engine']:.1%} by CPU per image (target >= 70%)"
    )
    default = ("in_process", 2, MAX_PARTITIONS_PER_RUN, "postgres")
    variant = (args.executor, args.concurrent_runs, args.chunk, args.instance) != default
    name = (
        f"end_to_end_{args.executor}_{args.concurrent_runs}runs_chunk{args.chunk}_{args.instance}"
        if variant
        else "end_to_end"
    )
    path = write_results(name, result)
    print(f"wrote {path}")


def one_sync(args: argparse.Namespace, niceness: int) -> dict[str, Any]:
    """One whole backfill on a fresh stack, with the engine measured just before and after."""
    context = machine() | {"niceness": niceness}
    print(f"load average {context['load_average']}", flush=True)
    with (
        ExitStack() as cleanup,
        running_stack("bench_e2e") as stack,
        tempfile.TemporaryDirectory() as dagster_home,
    ):
        import_corpus_catalog(stack.catalog, stack.origin_url, args.artworks)
        os.environ.update(stack.env(RENDER_WORKERS=args.render_workers, WEBP_METHOD=args.method))
        os.environ.update(image_environment())  # what the image gives a launched run
        with stack.catalog.session() as session:
            partitions = queue.partitions_with_work(session, max_attempts=5)
        ranges = partition_ranges(partitions, chunk=args.chunk)
        partitions_in_runs = sum(
            len(artwork_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))
            for start, end in ranges
        )
        print(f"{args.artworks} artworks in {len(partitions)} partitions -> {len(ranges)} runs", flush=True)
        engine_before, engine_cpu = engine_two_core_throughput(args.method)
        print(f"engine, two threads: {engine_before:.2f} images/s", flush=True)

        if args.instance == "postgres":
            cleanup.enter_context(dagster_storage_on_postgres(Path(dagster_home)))
        else:
            (Path(dagster_home) / "dagster.yaml").write_text(TELEMETRY_OFF)
        instance = dg.DagsterInstance.from_config(dagster_home)
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
        steps, events = run_events(instance, {r["run_id"] for r in runs})
        # Again after the sync: other programs' load moves wall-clock rates, so the reference is the
        # mean of before and after, and the CPU-based share below does not depend on it at all.
        engine_after, _ = engine_two_core_throughput(args.method)
        engine_rate = (engine_before + engine_after) / 2
        with stack.catalog.session() as session:
            counts = queue.count_work(session, Scope(), max_attempts=5, signature="-")

    processed = stages["image_renditions"]["succeeded"]
    rate = processed / wall
    stage_wall = sum(s["wall_seconds"] for s in stages.values())
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": args.artworks,
        "executor": args.executor,
        "dagster_instance": args.instance,
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
        "step_seconds": steps,
        "dagster_events": events,
        "partitions_in_runs": partitions_in_runs,
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
    return result


def report(result: dict[str, Any]) -> str:
    stages = result["stages"]
    per_image = 1000 / max(result["processed"], 1)
    phase_rows = [
        [
            stage,
            phase,
            seconds,
            f"{seconds * per_image:.1f}",
            stages[stage]["cpu_seconds_by_phase"].get(phase, 0.0),
            f"{stages[stage]['cpu_seconds_by_phase'].get(phase, 0.0) * per_image:.1f}",
        ]
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
            "Time by phase (thread-seconds summed over workers; CPU: what those threads used of a core):",
            table(["stage", "phase", "seconds", "ms per image", "CPU s", "CPU ms per image"], phase_rows),
            "",
            "Wall seconds by step (from the event log, summed over runs):",
            table(["step", "seconds"], [[k, v] for k, v in result["step_seconds"].items()]),
            "",
            f"Dagster events recorded: {sum(result['dagster_events'].values())} for"
            f" {result['partitions_in_runs']} partitions in the runs' ranges: "
            + ", ".join(f"{name} {count}" for name, count in result["dagster_events"].items()),
            "",
            "CPU seconds by process: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["cpu_seconds"].items()),
        ]
    )


if __name__ == "__main__":
    main()
