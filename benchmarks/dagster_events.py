"""What one partitioned materialization event costs Dagster's storage, per kind of instance storage.

    python -m benchmarks.dagster_events [--events 200] [--runs 3]

A `sync_images` run records two events per partition for each of its three assets (planned, then
materialized), so a backfill of all 1,280 partitions writes about 7,700 of them. This records
`--events` materializations of one asset, each for its own multi-dimensional partition and tagged as
a run tags them, through a Dagster instance on each storage: the embedded SQLite, dagster-postgres as
it ships (a new connection per event), and dagster/dagster.yaml's PooledPostgresStorage. Reported:
wall and client CPU milliseconds per event, medians of `--runs`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from benchmarks.common import machine, median, table, write_results
from tvdb_images_tests.support import services
from tvdb_images_tests.support.stack import dagster_postgres_url, deployed_dagster_storage

STORAGES = ("sqlite", "dagster-postgres", "pooled (dagster/dagster.yaml)")


@contextmanager
def instance_home(kind: str) -> Iterator[str]:
    """A DAGSTER_HOME whose dagster.yaml selects `kind`, with a scratch database if it needs one."""
    with tempfile.TemporaryDirectory() as home:
        config: dict = {"telemetry": {"enabled": False}}
        name = None
        if kind != "sqlite":
            name = services.unique_name("bench_events")
            url = services.create_database(name)
            if kind == "dagster-postgres":
                config["storage"] = {"postgres": {"postgres_url": dagster_postgres_url(url)}}
            else:
                config["storage"] = deployed_dagster_storage(url)
        (Path(home) / "dagster.yaml").write_text(yaml.safe_dump(config))
        try:
            yield home
        finally:
            if name is not None:
                services.drop_database(name)


def materialization(index: int) -> dg.AssetMaterialization:
    shard = f"{index % 256:02x}"
    return dg.AssetMaterialization(
        "source_images",
        partition=f"series|{shard}",
        metadata={"succeeded": index, "seconds_by_phase": dg.MetadataValue.json({"fetch": 1.5})},
        tags={"dagster/partition/content_type": "series", "dagster/partition/shard": shard},
    )


def measure(kind: str, events: int) -> tuple[float, float]:
    """Milliseconds of wall clock and of this process's CPU per event."""
    with instance_home(kind) as home:
        instance = dg.DagsterInstance.from_config(home)
        instance.report_runless_asset_event(materialization(0))  # tables checked, connections made
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(events):
            instance.report_runless_asset_event(materialization(index))
        return (
            (time.perf_counter() - wall) * 1000 / events,
            (time.process_time() - cpu) * 1000 / events,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in STORAGES}
    for _ in range(args.runs):
        for kind in STORAGES:
            runs[kind].append(measure(kind, args.events))
    summary = {
        kind: {
            "wall_ms_per_event": median([wall for wall, _ in results]),
            "client_cpu_ms_per_event": median([cpu for _, cpu in results]),
        }
        for kind, results in runs.items()
    }
    print(
        table(
            ["storage", "wall ms per event", "client CPU ms per event"],
            [[k, v["wall_ms_per_event"], v["client_cpu_ms_per_event"]] for k, v in summary.items()],
        )
    )
    path = write_results(
        "dagster_events",
        {"machine": machine(), "events": args.events, "runs": runs, "summary": summary},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
