"""A soak of the real API: mixed load for many minutes with a sync running beside it, watching that
nothing grows.

    python -m benchmarks.soak [--minutes 10] [--connections 64] [--workers 2] [--artworks 140]
                              [--sync-batch 10] [--set NAME=VALUE ...] [--output FILE]

`--set SERVING_BYTE_CACHE_MB=1` makes every image request a byte-cache miss (a storage read).

Setup: SeaweedFS and a fresh PostgreSQL catalog filled by a real sync of `--artworks` corpus artworks
(the pipeline's own stages), then `tvdb-images serve --workers N` with its default settings.

Load: `wrk` on two threads with `--connections` connections, one minute at a time, rotating over a
shuffled mix of image GETs (every size of every artwork), conditional GETs with the current ETag
(304), artwork metadata and storage stats. Beside it, another process syncs: each round imports
`--sync-batch` new artworks and runs the download and render stages over them, so the catalog and
storage the API reads change throughout.

Watched every few seconds: resident memory and open file descriptors of every API worker, each
worker's TCP connections to PostgreSQL and to S3, and the catalog database's connections in
`pg_stat_activity`. The result compares the first minute with the last (p99, req/s, RSS, fds,
connections) and counts errors (wrk's connect/read/write/timeout errors and statuses >= 400).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from sqlalchemy import create_engine, select, text

from benchmarks.common import machine, setting_arg, table, write_results
from benchmarks.machine_load import raise_priority
from benchmarks.serving import served_renditions, sync_everything
from benchmarks.stack import Stack, corpus_catalog_lines, running_stack
from benchmarks.wrk_load import run_wrk
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import store_from_settings
from tvdb_images_tests.support.processes import start_api_server

SAMPLE_SECONDS = 5.0


def mixed_requests(stack: Stack, work_dir: Path) -> tuple[Path, dict[str, int]]:
    """One request file: image, 304, metadata and stats requests, shuffled with a fixed seed."""
    images, conditional, metadata = [], [], set()
    for rendition in served_renditions(stack):
        images.append(rendition.path)
        conditional.append(f"{rendition.path}\t{rendition.etag}")
        metadata.add(f"/api/v1/images/artwork/{rendition.artwork_id}")
    stats = ["/api/v1/images/storage/stats"] * max(1, len(metadata) // 4)
    lines = [*images, *conditional, *sorted(metadata), *stats]
    random.Random(0).shuffle(lines)
    requests = work_dir / "soak.txt"
    requests.write_text("".join(f"{line}\n" for line in lines))
    mix = {"image": len(images), "not_modified": len(conditional), "metadata": len(metadata)}
    return requests, mix | {"stats": len(stats)}


def sync_beside(database_url: str, env: dict[str, str], first_id: int, batch: int, stop: Any) -> None:
    """Rounds of import + download + render of new artworks until `stop` is set (runs in its own
    process, as a Dagster run would)."""
    import os

    os.environ.update(env)
    from tvdb_images.config import Settings

    settings = Settings.model_validate({**env, "RENDER_WORKERS": "1"})
    pipeline = PipelineSettings.from_settings(settings)
    store = store_from_settings(settings)
    catalog = Catalog(database_url)
    origin = f"http://{env['ALLOWED_SOURCE_HOSTS']}"
    rounds = 0
    with ImageFetcher(pipeline.fetch) as fetcher:
        while not stop.is_set():
            lines = corpus_catalog_lines(origin, batch, first_id=first_id + rounds * batch)
            import_catalog_lines(catalog, lines)
            _download, render = sync_scope(catalog, store, fetcher, pipeline, Scope())
            rounds += 1
            print(f"  sync round {rounds}: rendered {render.succeeded}, failed {render.failed}", flush=True)
    catalog.dispose()


class Watcher:
    """Samples every API worker (RSS, fds, TCP connections to PostgreSQL and S3) and the database's
    connection count until stopped."""

    def __init__(self, server_pid: int, stack: Stack) -> None:
        self.server = psutil.Process(server_pid)
        self.s3_port = urlsplit(stack.seaweedfs.endpoint).port
        self.database = stack.database_name
        self.engine = create_engine(stack.database_url, pool_size=1, max_overflow=0)
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-watcher", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

    def workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (spawned by multiprocessing), or the server itself if it has none."""
        children = [
            p
            for p in self.server.children(recursive=True)
            if "spawn_main" in _cmdline(p) and "resource_tracker" not in _cmdline(p)
        ]
        return children or [self.server]

    def sample(self) -> dict[str, Any]:
        workers: dict[str, dict[str, int]] = {}
        for process in self.workers():
            with contextlib.suppress(psutil.Error):
                remote_ports = [
                    c.raddr.port
                    for c in process.net_connections(kind="tcp")
                    if c.raddr and c.status == psutil.CONN_ESTABLISHED
                ]
                workers[str(process.pid)] = {
                    "rss_mb": round(process.memory_info().rss / 1e6, 1),
                    "fds": process.num_fds(),
                    "postgres": remote_ports.count(5432),
                    "s3": remote_ports.count(self.s3_port),
                }
        with self.engine.connect() as connection:
            database_connections = connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": self.database}
            )
        return {
            "t": round(time.monotonic() - self.started, 1),
            "workers": workers,
            "database_connections": int(database_connections or 0),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(SAMPLE_SECONDS)


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def window(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Per worker, the largest RSS / fds / connections seen between `start` and `end` seconds."""
    chosen = [s for s in samples if start <= s["t"] < end]
    per_worker: dict[str, dict[str, float]] = {}
    for sample in chosen:
        for pid, figures in sample["workers"].items():
            mine = per_worker.setdefault(pid, {})
            for name, value in figures.items():
                mine[name] = max(mine.get(name, 0), value)
    return {
        "workers": per_worker,
        "database_connections_max": max((s["database_connections"] for s in chosen), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--artworks", type=int, default=140)
    parser.add_argument("--sync-batch", type=int, default=10, help="new artworks per sync round")
    parser.add_argument("--set", type=setting_arg, action="append", default=[], help="NAME=VALUE for the API")
    parser.add_argument("--output", type=Path, help="write the results here instead of results/soak.json")
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    args = parser.parse_args()
    context = machine() | {"niceness": raise_priority(args.priority)}

    with running_stack("soak") as stack, tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(scratch)
        sync_everything(stack, args.artworks)
        requests, mix = mixed_requests(stack, work_dir)
        # A loaded machine can take minutes to import the app in every worker.
        api, port = start_api_server(
            "api-soak",
            {**stack.env(), **dict(args.set), "PATH": str(Path(sys.executable).parent)},
            log_dir=work_dir,
            extra_args=["--workers", str(args.workers)],
            timeout=600,
        )
        base = f"http://127.0.0.1:{port}"
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        syncer = spawn.Process(
            target=sync_beside,
            args=(stack.database_url, stack.env(), 1_000_000, args.sync_batch, stop),
            name="sync-beside",
        )
        try:
            run_wrk(base, requests, args.connections, 5)  # warm-up: connections, caches, lazy imports
            syncer.start()
            minutes: list[dict[str, Any]] = []
            with Watcher(api.pid, stack) as watcher:
                for minute in range(args.minutes):
                    figures = run_wrk(base, requests, args.connections, 60)
                    figures["minute"] = minute + 1
                    minutes.append(figures)
                    print(
                        f"  minute {minute + 1:2d}: {figures['requests_per_second']:7.0f} req/s"
                        f"  p50 {figures['p50_us'] / 1000:6.1f} ms  p99 {figures['p99_us'] / 1000:6.1f} ms"
                        f"  errors {figures['errors']}  {watcher.samples[-1] if watcher.samples else ''}",
                        flush=True,
                    )
                stop.set()
                syncer.join(timeout=300)
                time.sleep(2 * SAMPLE_SECONDS)  # idle: what stays open once the load stops
                idle = watcher.sample()
                elapsed = watcher.samples[-1]["t"] if watcher.samples else 0.0
                samples = watcher.samples
        finally:
            stop.set()
            if syncer.is_alive():
                syncer.terminate()
            api.stop()
        with stack.catalog.session() as session:
            synced_beside = session.scalar(
                select(Artwork.id).where(Artwork.id >= 1_000_000).order_by(Artwork.id.desc()).limit(1)
            )

    first, last = window(samples, 0, 60), window(samples, elapsed - 60, elapsed + 1)
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "minutes": args.minutes,
        "connections": args.connections,
        "workers": args.workers,
        "artworks": args.artworks,
        "settings": dict(args.set),
        "request_mix": mix,
        "sync_beside_last_artwork_id": synced_beside,
        "errors": sum(m["errors"] for m in minutes),
        "requests": sum(m["requests"] for m in minutes),
        "p99_ms_first_minute": minutes[0]["p99_us"] / 1000,
        "p99_ms_last_minute": minutes[-1]["p99_us"] / 1000,
        "p99_ms_median_minute": statistics.median(m["p99_us"] for m in minutes) / 1000,
        "first_minute": first,
        "last_minute": last,
        "idle_after": idle,
        "per_minute": minutes,
        "samples": samples,
    }
    rows = [
        [m["minute"], m["requests_per_second"], m["p50_us"] / 1000, m["p99_us"] / 1000, m["errors"]]
        for m in minutes
    ]
    print(table(["minute", "req/s", "p50 ms", "p99 ms", "errors"], rows))
    worker_rows = [
        [
            pid,
            figures["rss_mb"],
            last["workers"].get(pid, {}).get("rss_mb"),
            figures["fds"],
            last["workers"].get(pid, {}).get("fds"),
            figures["postgres"],
            last["workers"].get(pid, {}).get("postgres"),
            figures["s3"],
            last["workers"].get(pid, {}).get("s3"),
        ]
        for pid, figures in first["workers"].items()
    ]
    headers = ["worker", "RSS MB 1st", "RSS MB last", "fds 1st", "fds last", "PG 1st", "PG last"]
    print(table([*headers, "S3 1st", "S3 last"], worker_rows))
    print(
        f"database connections max: first minute {first['database_connections_max']}, "
        f"last minute {last['database_connections_max']}, idle after {idle['database_connections']}"
    )
    if args.output:
        command = " ".join(["python -m benchmarks.soak", *sys.argv[1:]])
        document = {"benchmark": "soak", "command": command, **result}
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.output}")
    else:
        print(f"wrote {write_results('soak', result)}")


if __name__ == "__main__":
    main()
