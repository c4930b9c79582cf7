"""How long a 1,280-partition backfill with nothing to do takes, from the click to its last run's end.

    python -m benchmarks.backfill_progress [--storage postgres|batching|dagster] [--daemon deployed|dagster]
                                           [--changed 100] [--priority 10]

Starts `dagster-webserver` and `dagster-daemon` as the browser test does (the repository's
workspace.yaml, an instance in a temporary DAGSTER_HOME, an empty catalog), launches an asset backfill
of all 1,280 partitions of the three sync assets through GraphQL (the Lineage dialog's request), and
polls it every 5 s until it completes.

`--storage postgres` (the default) is the deployment: dagster/dagster.yaml as the native stack test uses
it (PostgreSQL run and event storage, the production queue and limits, step logs in S3; runs started as
processes instead of containers) and the compose file's daemon command (`tvdb_images.deployment.daemon`;
`--daemon dagster`: plain `dagster-daemon`), the image's DAGSTER_* environment, a PostgreSQL catalog and
SeaweedFS storage. `--storage batching` is the embedded default (the top-level dagster.yaml: SQLite with
`BatchingSqliteStorage`, a SQLite catalog, local storage); `--storage dagster` replaces that storage by
Dagster's own SQLite storage.

`--changed N` (with `--storage postgres`) is the nightly sync instead: N corpus artworks to sync
(TVDB_IMAGES_CORPUS_DIR, served by a loopback origin), and the backfill covers exactly the ranges the
nightly schedule requests for that catalog, tagged for the TVDB host as `sync_images` runs are; the
catalog's statuses afterwards are reported.

Reported, from the run records: launch to the first run submitted and started, the gaps between run
submissions, each run's queue wait (submitted to started: the launch, a new process importing Dagster
and the code location, included) and its own wall time (started to ended), the phases of each run from
its events (the launch, each step and check), launch to the first partitions counted on the backfill
page, launch to the last run's end (the figure the target is about) and to the backfill marked complete;
with the load average and the cores the whole machine kept busy meanwhile. As root, `--priority` lowers
the niceness of this process and so of the webserver, the daemon, the code server and every run it
starts (PostgreSQL and SeaweedFS excepted), to measure the software rather than the machine's other
work.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from sqlalchemy import func, select

from benchmarks.common import machine, median, write_results
from benchmarks.machine_load import machine_busy_cores, raise_priority, sample
from benchmarks.stack import import_corpus_catalog, running_stack
from tvdb_images.catalog import migrate, queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork
from tvdb_images.defs.jobs import SOURCE_HOST_TAG
from tvdb_images.defs.partitions import artwork_partitions
from tvdb_images.defs.requests import partition_ranges
from tvdb_images_tests.support import services
from tvdb_images_tests.support.dagster_ui import DagsterDeployment, dagster_deployment, instance_config
from tvdb_images_tests.support.stack import image_environment, instance_for_native_run
from tvdb_images_tests.support.waiting import wait_until

SYNC_ASSETS = ["missing_artwork", "source_images", "image_renditions"]
FINISHED = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "COMPLETED"}
COMPUTE_LOGS_BUCKET = "bench-compute-logs"
DAEMONS = {  # the compose file's command, and Dagster's own (backfills looked at every 30 s)
    "deployed": [sys.executable, "-m", "tvdb_images.deployment.daemon", "run"],
    "dagster": [str(Path(sys.executable).parent / "dagster-daemon"), "run"],
}


@contextlib.contextmanager
def sqlite_deployment(tmp: Path, storage: str) -> Iterator[DagsterDeployment]:
    """The embedded default: SQLite instance (batching or Dagster's own), SQLite catalog, local disk."""
    url = f"sqlite:///{tmp / 'catalog.db'}"
    migrate.upgrade(url)
    env = {
        **os.environ,
        "TVDB_IMAGES_DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": url,
        "LOCAL_STORAGE_DIR": str(tmp / "storage"),
        "RENDER_WORKERS": "1",
    }
    config = instance_config()
    if storage == "dagster":
        config.pop("storage", None)
    with dagster_deployment(tmp, env, instance=config) as deployment:
        yield deployment


@contextlib.contextmanager
def postgres_deployment(tmp: Path, daemon: str, changed: int) -> Iterator[DagsterDeployment]:
    """The deployment's instance and services, natively: PostgreSQL for Dagster and the catalog, S3;
    with `changed` artworks of the corpus to sync (served by a loopback origin)."""
    with running_stack("bench_backfill", with_origin=changed > 0) as stack:
        if changed:
            import_corpus_catalog(stack.catalog, stack.origin_url, changed)
        dagster_db = services.unique_name("bench_backfill_dagster")
        services.create_database(dagster_db)
        try:
            s3 = stack.seaweedfs
            client = boto3.client(
                "s3",
                endpoint_url=s3.endpoint,
                aws_access_key_id=s3.access_key,
                aws_secret_access_key=s3.secret_key,
                region_name="us-east-1",
            )
            for bucket in (stack.settings().s3_bucket_originals, stack.settings().s3_bucket_thumbnails):
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
            client.create_bucket(Bucket=COMPUTE_LOGS_BUCKET)
            instance_env = {
                "DAGSTER_POSTGRES_URL": services.database_url(dagster_db).replace(
                    "postgresql://", "postgresql+psycopg2://", 1
                ),
                "DAGSTER_COMPUTE_LOGS_BUCKET": COMPUTE_LOGS_BUCKET,
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                "S3_REGION": "us-east-1",
                "DATABASE_URL": stack.database_url,
                **image_environment(),
            }
            os.environ.update(instance_env)  # this process reads the same instance's run records
            env = {**os.environ, **stack.env(RENDER_WORKERS=2), **instance_env}
            command = DAEMONS[daemon]
            with dagster_deployment(
                tmp, env, instance=instance_for_native_run(), daemon_command=command
            ) as deployment:
                yield deployment
        finally:
            services.drop_database(dagster_db)


def nightly_partitions(database_url: str) -> list[str]:
    """Every partition of the ranges the nightly schedule requests for the catalog as it stands."""
    catalog = Catalog(database_url)
    try:
        with catalog.session() as session:
            partitions = queue.partitions_with_work(session, max_attempts=5)
    finally:
        catalog.dispose()
    keys: list[str] = []
    for start, end in partition_ranges(partitions):
        in_range = artwork_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
        keys += [str(key) for key in in_range]
    return keys


def artwork_statuses(database_url: str) -> dict[str, int]:
    """How many artworks of the catalog are in each status: the changed ones processed, or why not."""
    catalog = Catalog(database_url)
    try:
        with catalog.session() as session:
            rows = session.execute(select(Artwork.status, func.count()).group_by(Artwork.status))
            return {str(status): n for status, n in rows}
    finally:
        catalog.dispose()


def measure(storage: str, timeout: float, daemon: str = "deployed", changed: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="backfill_progress_") as directory:
        tmp = Path(directory)
        deployments = (
            postgres_deployment(tmp, daemon, changed)
            if storage == "postgres"
            else sqlite_deployment(tmp, storage)
        )
        with deployments as deployment:
            keys = [str(key) for key in artwork_partitions.get_partition_keys()]
            tags = None
            if changed:  # what the nightly schedule runs: its ranges, tagged as sync_images' runs are
                keys, tags = nightly_partitions(os.environ["DATABASE_URL"]), SOURCE_HOST_TAG
            load_before = os.getloadavg()
            cpu_before = sample()
            launched = time.time()
            backfill_id = deployment.api.launch_asset_backfill(SYNC_ASSETS, keys, tags=tags)
            first_progress: tuple[float, int] | None = None
            complete_s: float | None = None

            def finished() -> bool:
                nonlocal first_progress, complete_s
                progress = deployment.api.backfill_progress(backfill_id).get("image_renditions", {})
                if first_progress is None and progress.get("materialized", 0) > 0:
                    first_progress = (round(time.time() - launched, 1), progress["materialized"])
                backfill = deployment.api.backfill(backfill_id)
                runs_done = all(run.status in ("SUCCESS", "FAILURE", "CANCELED") for run in backfill.runs)
                done = backfill.status in FINISHED and runs_done
                if done:
                    complete_s = time.time() - launched
                return done

            with contextlib.suppress(TimeoutError):  # an unfinished backfill is reported as it stands
                wait_until(finished, timeout, 5)
            backfill = deployment.api.backfill(backfill_id)
            load_after = os.getloadavg()
            busy = machine_busy_cores(cpu_before, sample(), time.time() - launched)
            instance = deployment.instance()
            records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            phases = [run_phases(instance, record.dagster_run.run_id) for record in records]
            statuses = artwork_statuses(os.environ["DATABASE_URL"]) if changed else {}
    return summarize(records, launched) | {
        "partitions": len(keys),
        "changed_artworks": changed,
        "artwork_status_after": statuses,
        "run_phases_s": phases,
        "storage": storage,
        "status": backfill.status,
        "first_progress_s_and_partitions": first_progress,
        "backfill_marked_complete_s": round(complete_s, 1) if complete_s else None,
        "load_average_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
        "machine_busy_cores": round(busy, 2),
    }


def run_phases(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Where one run's time went, from its events: dequeued to started (the launch: a new process
    importing Dagster and the code location), each step's wall time, the checks included."""
    events = instance.all_logs(run_id)
    at: dict[str, float] = {}
    steps: dict[str, list[float]] = {}
    for event in events:
        kind = event.dagster_event.event_type_value if event.dagster_event else None
        if kind in ("PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
            at.setdefault(kind, event.timestamp)
        elif kind in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE") and event.step_key:
            steps.setdefault(event.step_key, []).append(event.timestamp)
    phases: dict[str, float] = {}
    if "PIPELINE_STARTING" in at and "PIPELINE_START" in at:
        phases["launch"] = round(at["PIPELINE_START"] - at["PIPELINE_STARTING"], 1)
    for step, times in steps.items():
        phases[step] = round(max(times) - min(times), 1)
    end = at.get("PIPELINE_SUCCESS", at.get("PIPELINE_FAILURE"))
    if end and steps:
        phases["after_last_step"] = round(end - max(max(t) for t in steps.values()), 1)
    return phases


def summarize(records: Sequence[Any], launched: float) -> dict[str, Any]:
    """Times relative to the launch, from Dagster's run records (created, started, ended)."""
    runs = sorted(records, key=lambda r: r.create_timestamp.timestamp())
    created = [r.create_timestamp.timestamp() - launched for r in runs]
    started = sorted(r.start_time - launched for r in runs if r.start_time)
    ended = sorted(r.end_time - launched for r in runs if r.end_time)
    queued = [r.start_time - r.create_timestamp.timestamp() for r in runs if r.start_time]
    own = [r.end_time - r.start_time for r in runs if r.start_time and r.end_time]
    return {
        "runs": len(runs),
        "first_run_submitted_s": round(created[0], 1) if created else None,
        "first_run_started_s": round(started[0], 1) if started else None,
        "submission_gaps_s": [round(b - a, 1) for a, b in itertools.pairwise(created)],
        "last_run_submitted_s": round(created[-1], 1) if created else None,
        "queue_wait_s": [round(q, 1) for q in queued],
        "run_wall_s": [round(w, 1) for w in own],
        "run_wall_median_s": round(median(own), 1) if own else None,
        "last_run_ended_s": round(ended[-1], 1) if ended else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", choices=["postgres", "batching", "dagster"], default="postgres")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--daemon", choices=sorted(DAEMONS), default="deployed", help="--storage postgres's")
    parser.add_argument(
        "--changed",
        type=int,
        default=0,
        help="--storage postgres: corpus artworks to sync, the nightly's ranges",
    )
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    args = parser.parse_args()
    niceness = raise_priority(args.priority)
    result = measure(args.storage, args.timeout, args.daemon, args.changed)
    result |= {"niceness": niceness, "daemon": args.daemon}
    for key, value in result.items():
        print(f"{key}: {value}")
    name = f"backfill_progress_{args.storage}" + ("_dagster_daemon" if args.daemon == "dagster" else "")
    name += f"_changed{args.changed}" if args.changed else ""
    write_results(name, {"machine": machine(), "result": result})


if __name__ == "__main__":
    main()
