"""What a ranged `sync_images` run with nothing to do costs Dagster's deployed storage.

    python -m benchmarks.ranged_run_events [--partitions 128] [--runs 3]

Each run over `--partitions` partitions (an empty catalog, so the stages do no image work) records,
per partition, three planned and three materialized events (with that partition's own metadata) and
one evaluation for each of the two asset checks. Dagster's storage is dagster/dagster.yaml's
PooledPostgresStorage on a scratch PostgreSQL database with DAGSTER_EVENT_BATCH_SIZE=1000 as the image
sets it. Reported per run: wall seconds, SQL statements the instance ran, and each step's seconds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from sqlalchemy import event

from benchmarks.common import machine, median, table, write_results
from tvdb_images.catalog import migrate
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.partitions import artwork_partitions
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG
from tvdb_images_tests.support import services
from tvdb_images_tests.support.stack import dagster_postgres_url, deployed_dagster_storage

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def statements_counter(instance: dg.DagsterInstance) -> Counter[str]:
    counts: Counter[str] = Counter()
    for storage in (instance._run_storage, instance._event_storage, instance._schedule_storage):
        event.listen(storage._engine, "before_cursor_execute", lambda *_: counts.update(["statements"]))
    return counts


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if entry.step_key and kind == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif entry.step_key and kind == "STEP_SUCCESS":
            seconds[entry.step_key] = round(entry.timestamp - started[entry.step_key], 2)
    return seconds


def measure(partitions: int, runs: int, home: Path) -> list[dict[str, Any]]:
    catalog_name, dagster_name = services.unique_name("bench_rr_cat"), services.unique_name("bench_rr_dg")
    catalog_url = services.create_database(catalog_name)
    try:
        migrate.upgrade(catalog_url)
        os.environ["DAGSTER_POSTGRES_URL"] = dagster_postgres_url(services.create_database(dagster_name))
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
        config = {"telemetry": {"enabled": False}, "storage": deployed_dagster_storage()}
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        instance = dg.DagsterInstance.from_config(str(home))
        settings = Settings.model_validate({"DATABASE_URL": catalog_url, "LOCAL_STORAGE_DIR": str(home)})
        job = build_definitions(settings).resolve_job_def("sync_images")
        keys = [str(key) for key in artwork_partitions.get_partition_keys()]
        tags = {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[partitions - 1]}
        job.execute_in_process(instance=instance, tags=tags, run_config=QUIET)  # warm up
        counts = statements_counter(instance)
        results = []
        for _ in range(runs):
            before = counts["statements"]
            began = time.perf_counter()
            result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET)
            results.append(
                {
                    "wall_seconds": round(time.perf_counter() - began, 2),
                    "statements": counts["statements"] - before,
                    "steps": step_seconds(instance, result.run_id),
                }
            )
        instance.dispose()
        return results
    finally:
        services.drop_database(catalog_name)
        services.drop_database(dagster_name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    before = machine()
    with tempfile.TemporaryDirectory() as home:
        runs = measure(args.partitions, args.runs, Path(home))
    result = {
        "machine": before | {"load_average_after": machine()["load_average"]},
        "partitions": args.partitions,
        "runs": runs,
        "median_wall_seconds": median([r["wall_seconds"] for r in runs]),
    }
    path = write_results("ranged_run_events", result)
    steps = sorted(runs[0]["steps"])
    print(
        table(
            ["run", "wall s", "statements", *steps],
            [
                [i + 1, r["wall_seconds"], r["statements"], *(r["steps"][s] for s in steps)]
                for i, r in enumerate(runs)
            ],
        )
    )
    print(f"load average before {before['load_average']}, results in {path}")


if __name__ == "__main__":
    main()
