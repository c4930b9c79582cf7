"""Scale: a sync's memory as the catalog grows, discovery in a million-artwork catalog, an idle run.

    python -m benchmarks.scale [--sizes 10000,100000] [--sample 140] [--discovery-rows 1000000]

1. Memory. For each catalog size, a fresh PostgreSQL catalog gets that many synthetic rows (processed,
   with renditions; 1% failed for good, 1% gone; see `bulk_catalog`) plus the same `--sample` pending
   artworks from the corpus origin. Then what the nightly schedule runs: `sync_images` over every
   partition with work, in ranges of MAX_PARTITIONS_PER_RUN, each run in a new process as the run
   launcher starts it; each run reports its own peak RSS (`ru_maxrss`, the kernel's exact high-water
   mark). The work per sync is the same at every size, so any growth is what the catalog's size
   costs; rendering 100,000 real images would take hours and measure the renderer, not the scaling.
2. Discovery. A catalog of `--discovery-rows` rows (2% pending) on PostgreSQL: the queries discovery
   and the stages run for one partition (counts, the first page of download and render candidates),
   median of 7, with EXPLAIN ANALYZE of the download query to show the partition index at work, and
   the schedule's scan for partitions with work over the whole catalog.
3. Idle run. `sync_images` for one partition that has nothing to do, end to end through Dagster
   (discovery, both stages, both checks) in that million-row catalog, median of 3 runs: in a warm
   process, and each in a new process as the run launcher starts it (Python and Dagster imports
   included).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from benchmarks.bulk_catalog import load as bulk_load
from benchmarks.common import machine, median, table, write_results
from benchmarks.end_to_end import run_backfill
from benchmarks.machine_load import raise_priority
from benchmarks.stack import import_corpus_catalog, running_stack
from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.scope import Scope
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images_tests.support.stack import image_environment

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IDLE_PARTITION = ("series", "0a")


def memory_at(size: int, sample: int) -> dict[str, Any]:
    """The nightly sync (every partition with work, in ranges of MAX_PARTITIONS_PER_RUN) over a catalog
    of `size` rows plus `sample` artworks to sync, each run in a new process as the run launcher
    starts it."""
    with running_stack(f"bench_scale_{size}") as stack, tempfile.TemporaryDirectory() as dagster_home:
        signature = PipelineSettings.from_settings(stack.settings()).signature
        bulk = bulk_load(stack.database_url, size, signature=signature)
        import_corpus_catalog(stack.catalog, stack.origin_url, sample)
        os.environ.update(stack.env(RENDER_WORKERS=2) | image_environment())
        with stack.catalog.session() as session:
            partitions = queue.partitions_with_work(session, max_attempts=5)
            processed_before = queue.count_work(session, Scope(), max_attempts=5, signature="-")["processed"]
        started = time.perf_counter()
        runs = run_backfill(partition_ranges(partitions), "in_process", dagster_home, concurrent_runs=1)
        wall = time.perf_counter() - started
        with stack.catalog.session() as session:
            processed = queue.count_work(session, Scope(), max_attempts=5, signature="-")["processed"]
    peak = max(max(r["peak_rss_mb"], r["step_peak_rss_mb"]) for r in runs)
    print(f"  {size:>9,} rows + {sample} to sync: peak RSS of a run process {peak:.0f} MB", flush=True)
    return {
        "catalog_rows": size + sample,
        "bulk_load_seconds": bulk.seconds,
        "runs": len(runs),
        "runs_succeeded": sum(r["success"] for r in runs),
        "synced": processed - processed_before,
        "wall_seconds": wall,
        "peak_rss_mb": peak,
        "peak_rss_by_run_mb": [round(r["peak_rss_mb"], 1) for r in runs],
    }


def timed(function, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return median(times)


def explain(catalog: Catalog, session, call) -> list[str]:
    """EXPLAIN ANALYZE of the exact statement `call` sends (captured on its way to the driver)."""
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        captured.append((statement, parameters))

    event.listen(catalog.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(catalog.engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]


def discovery(rows: int) -> dict[str, Any]:
    import dagster as dg
    from sqlalchemy import text

    from tvdb_images.definitions import build_definitions

    with running_stack("bench_discovery", with_origin=False) as stack:
        settings = stack.settings()
        sig = PipelineSettings.from_settings(settings).signature
        bulk = bulk_load(stack.database_url, rows, signature=sig, pending_percent=2)
        print(f"  loaded {rows:,} rows ({bulk.renditions:,} renditions) in {bulk.seconds:.0f} s", flush=True)
        catalog = stack.catalog
        scope = Scope(partitions=(("movies", "3c"),))
        with catalog.session() as session:
            rows_in_partition = queue.count_work(session, scope, max_attempts=5, signature=sig)

            def counts() -> None:
                queue.assign_missing_layout(session)
                queue.count_work(session, scope, max_attempts=5, signature=sig)

            def download_page() -> None:
                queue.download_candidates(session, scope, max_attempts=5)

            def render_page() -> None:
                queue.render_candidates(session, scope, signature=sig, include_stale=False)

            def all_partitions() -> None:
                queue.partitions_with_work(session, max_attempts=5)

            queries = {
                "discovery counts (missing_artwork)": timed(counts),
                "download candidates, first page": timed(download_page),
                "render candidates, first page": timed(render_page),
                "partitions with work, whole catalog": timed(all_partitions, repeats=3),
            }
            plan = explain(catalog, session, download_page)
        # The idle partition: its pending rows become gone, so a run there has nothing to do.
        with catalog.session() as session:
            session.execute(
                text(
                    "UPDATE artwork SET status = 'gone'"
                    " WHERE content_type = :ct AND shard = :shard AND status = 'pending'"
                ),
                {"ct": IDLE_PARTITION[0], "shard": IDLE_PARTITION[1]},
            )
        os.environ.update(stack.env() | image_environment())
        job = build_definitions(settings).resolve_job_def("sync_images")
        instance = dg.DagsterInstance.ephemeral()
        key = f"{IDLE_PARTITION[0]}|{IDLE_PARTITION[1]}"
        idle = []
        for _ in range(3):
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, partition_key=key, run_config=QUIET)
            idle.append(time.perf_counter() - started)
            if not result.success:
                raise RuntimeError("the idle run failed")
        launched_seconds = []
        with tempfile.TemporaryDirectory() as dagster_home:
            for _ in range(3):
                started = time.perf_counter()
                (launched,) = run_backfill([(key, key)], "in_process", dagster_home, concurrent_runs=1)
                launched_seconds.append(time.perf_counter() - started)
                if not launched["success"]:
                    raise RuntimeError("an idle run in its own process failed")
    return {
        "rows": rows,
        "bulk_load_seconds": bulk.seconds,
        "partition_counts": rows_in_partition,
        "query_seconds": queries,
        "explain_download_candidates": plan,
        "idle_run_seconds": idle,
        "idle_run_median_seconds": median(idle),
        # As the run launcher runs it: a new process, which imports Dagster and the code location first.
        "idle_run_new_process_seconds": launched_seconds,
        "idle_run_new_process_median_seconds": median(launched_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--sample", type=int, default=140)
    parser.add_argument("--discovery-rows", type=int, default=1_000_000)
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    parser.add_argument(
        "--malloc-arena-max", type=int, default=None, help="MALLOC_ARENA_MAX for the run processes (glibc)"
    )
    args = parser.parse_args()
    context = machine() | {"niceness": raise_priority(args.priority)}
    if args.malloc_arena_max:
        os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    print("memory of a sync as the catalog grows:", flush=True)
    memory = [memory_at(int(size), args.sample) for size in args.sizes.split(",")]
    found = None
    if args.discovery_rows:
        print(f"discovery in a {args.discovery_rows:,}-row catalog:", flush=True)
        found = discovery(args.discovery_rows)
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "sample": args.sample,
        "malloc_arena_max": args.malloc_arena_max,
        "memory": memory,
        "discovery": found,
        "targets": {"peak_rss_mb": 500, "discovery_seconds": 1.0, "idle_run_seconds": 5.0},
    }
    print(report(result))
    path = write_results("scale" if args.discovery_rows else "scale_memory", result)
    print(f"wrote {path}")


def report(result: dict[str, Any]) -> str:
    lines = [
        "## Memory of a sync (same work, growing catalog)",
        table(
            [
                "catalog rows",
                "runs",
                "artworks synced",
                "wall s",
                "peak RSS of a run process, MB (target < 500)",
            ],
            [
                [f"{m['catalog_rows']:,}", m["runs"], m["synced"], m["wall_seconds"], m["peak_rss_mb"]]
                for m in result["memory"]
            ],
        ),
    ]
    found = result["discovery"]
    if found is None:
        return "\n".join(lines)
    return "\n".join(
        [
            *lines,
            "",
            f"## Discovery, one partition of {found['rows']:,} rows (median of 7, seconds; target < 1 s)",
            table(["query", "seconds"], list(found["query_seconds"].items())),
            "",
            "EXPLAIN ANALYZE, download candidates of one partition:",
            "\n".join(f"    {line}" for line in found["explain_download_candidates"]),
            "",
            "Idle run (one partition, nothing to do) through Dagster (target < 5 s):"
            f" median {found['idle_run_median_seconds']:.2f} s in a warm process"
            f" ({[round(s, 2) for s in found['idle_run_seconds']]}),"
            f" {found['idle_run_new_process_median_seconds']:.2f} s in a new run process, imports included"
            f" ({[round(s, 2) for s in found['idle_run_new_process_seconds']]})",
        ]
    )


if __name__ == "__main__":
    main()
