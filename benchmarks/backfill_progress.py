"""How soon a 1,280-partition backfill starts and shows progress, on the embedded default instance.

    python -m benchmarks.backfill_progress [--storage batching|dagster]

Starts `dagster-webserver` and `dagster-daemon` as the browser test does (the repository's
workspace.yaml and dagster.yaml in a temporary DAGSTER_HOME, an empty SQLite catalog), launches an
asset backfill of all 1,280 partitions of the three sync assets through GraphQL (the Lineage
dialog's request), and polls it every 5 s until it completes. `--storage dagster` replaces the
repository's `BatchingSqliteStorage` by Dagster's own SQLite storage, as before. Reported, from the
run records: launch to first run submitted and started, the gaps between run submissions, launch to
the first partitions counted on the backfill page, and launch to completion; with the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.common import machine, write_results
from tvdb_images.catalog import migrate
from tvdb_images.defs.partitions import artwork_partitions
from tvdb_images_tests.support.dagster_ui import dagster_deployment, instance_config
from tvdb_images_tests.support.waiting import wait_until

SYNC_ASSETS = ["missing_artwork", "source_images", "image_renditions"]
FINISHED = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "COMPLETED"}


def measure(storage: str, timeout: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="backfill_progress_") as directory:
        tmp = Path(directory)
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
            keys = [str(key) for key in artwork_partitions.get_partition_keys()]
            load_before = os.getloadavg()
            launched = time.time()
            backfill_id = deployment.api.launch_asset_backfill(SYNC_ASSETS, keys)
            first_progress: tuple[float, int] | None = None

            def finished() -> bool:
                nonlocal first_progress
                progress = deployment.api.backfill_progress(backfill_id).get("image_renditions", {})
                if first_progress is None and progress.get("materialized", 0) > 0:
                    first_progress = (time.time() - launched, progress["materialized"])
                backfill = deployment.api.backfill(backfill_id)
                runs_done = all(run.status in ("SUCCESS", "FAILURE", "CANCELED") for run in backfill.runs)
                return backfill.status in FINISHED and runs_done

            with contextlib.suppress(TimeoutError):  # an unfinished backfill is reported as it stands
                wait_until(finished, timeout, 5)
            backfill = deployment.api.backfill(backfill_id)
            load_after = os.getloadavg()
            records = deployment.instance().get_run_records(
                dg.RunsFilter(tags={"dagster/backfill": backfill_id})
            )
    created = sorted(r.create_timestamp.timestamp() - launched for r in records)
    started = sorted(r.start_time - launched for r in records if r.start_time)
    ended = sorted(r.end_time - launched for r in records if r.end_time)
    return {
        "storage": storage,
        "status": backfill.status,
        "runs": len(records),
        "first_run_submitted_s": round(created[0], 1) if created else None,
        "first_run_started_s": round(started[0], 1) if started else None,
        "submission_gaps_s": [round(b - a, 1) for a, b in itertools.pairwise(created)],
        "last_run_submitted_s": round(created[-1], 1) if created else None,
        "first_progress_s_and_partitions": first_progress,
        "complete_s": round(ended[-1], 1) if ended else None,
        "load_average_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", choices=["batching", "dagster"], default="batching")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    result = measure(args.storage, args.timeout)
    for key, value in result.items():
        print(f"{key}: {value}")
    write_results(f"backfill_progress_{args.storage}", {"machine": machine(), "result": result})


if __name__ == "__main__":
    main()
