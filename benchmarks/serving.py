"""The serving API under load with `wrk`, beside GETs of the same objects straight from SeaweedFS and a
bare ASGI app on the same uvicorn.

    python -m benchmarks.serving [--artworks 140] [--connections 64] [--seconds 10] [--runs 3]
                                 [--workers 1 2] [--set NAME=VALUE ...] [--output FILE]
                                 [--stats-artworks 50000] [--recount-objects 10000] [--no-stats]

Setup: SeaweedFS and a fresh PostgreSQL catalog, filled by a real sync (the pipeline's own stages)
of `--artworks` artworks from the corpus origin. For each `--workers` count, two `tvdb-images serve`
processes (default `--loop auto`): one with CDN_BASE_URL set (the redirect path: 307 to the CDN) and
one without (the streaming path). `wrk` rotates over every size of every artwork
(`benchmarks/wrk/rotate.lua`), with `--connections` connections on two threads, for:

- redirect: GET on the CDN server;
- stream: GET on the streaming server (bytes come from SeaweedFS through the API);
- stream metrics off: the same on a third server with METRICS_ENABLED=false, interleaved with
  `stream`, for the cost of the Prometheus metrics (serving.metrics);
- not modified: GET with the current ETag in If-None-Match (304, no storage read);
- trivial ASGI: a bare ASGI app answering 304 on the same uvicorn (workers, loop, httptools): what
  any Python server can do on this machine under the same load;
- direct S3: presigned GETs of the very same objects straight from SeaweedFS.

`--set NAME=VALUE` passes a setting to the API processes (for example `--set SERVING_CACHE_SECONDS=0
--set SERVING_BYTE_CACHE_MB=0` measures without the caches). Each path runs `--runs` times,
interleaved; the table shows medians. wrk, SeaweedFS, PostgreSQL and the API share the machine's two
cores, as they would on a small host.

Then the catalog statistics (unless `--no-stats`): `--stats-artworks` synthetic processed rows (five
renditions each) are added, and the stats query is timed in-process (5 times) and through the API's
cached endpoint (20 times); then `--recount-objects` small objects are added to storage and one
`?recount=true` (admin token) lists it all.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from sqlalchemy import select

from benchmarks.bulk_catalog import load as bulk_load
from benchmarks.common import machine, median, setting_arg, table, write_results
from benchmarks.machine_load import raise_priority
from benchmarks.stack import BUCKETS, Stack, import_corpus_catalog, running_stack
from benchmarks.wrk_load import run_wrk, summarize
from serving.conditional import strong_etag
from serving.server import event_loop
from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stats import storage_stats
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import artwork_storage_path
from tvdb_images_tests.support.processes import ManagedProcess, free_port, start_api_server

ROOT = Path(__file__).resolve().parents[1]
CDN = "https://cdn.example.com/thumbnails"
PATHS = ("redirect", "stream", "stream_metrics_off", "not_modified", "trivial_asgi", "direct_s3")
EXPECTED = {
    "redirect": 307,
    "stream": 200,
    "stream_metrics_off": 200,
    "not_modified": 304,
    "trivial_asgi": 304,
    "direct_s3": 200,
}
TOKEN = "benchmark-admin-token"


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least any ASGI app can do: a 304 with one header, no routing, no lookup, no log line."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", b'"x"')]})
    await send({"type": "http.response.body", "body": b""})


def sync_everything(stack: Stack, artworks: int) -> None:
    import_corpus_catalog(stack.catalog, stack.origin_url, artworks)
    settings = stack.settings(RENDER_WORKERS=2)
    pipeline = PipelineSettings.from_settings(settings)
    store = store_from_settings(settings)
    store.ensure_buckets()
    with ImageFetcher(pipeline.fetch) as fetcher:
        _download, render = sync_scope(stack.catalog, store, fetcher, pipeline, Scope())
    if render.succeeded != artworks:
        raise RuntimeError(f"sync rendered {render.succeeded} of {artworks}: {render.as_dict()}")


@dataclass(frozen=True)
class ServedRendition:
    """One stored rendition as a client asks for it: the artwork, its item path and current ETag."""

    artwork_id: int
    path: str  # /api/v1/images/{content_type}/{content_id}/{image_type}/{size}
    storage_key: str
    etag: str


def served_renditions(stack: Stack, image_format: str | None = None) -> list[ServedRendition]:
    """Every stored rendition (of `image_format` only, when given), for the request lists of the
    serving benchmarks."""
    query = select(
        Artwork.id,
        Artwork.content_type,
        Artwork.content_id,
        Artwork.image_type,
        ArtworkRendition.size,
        ArtworkRendition.storage_key,
        ArtworkRendition.checksum,
    ).join(ArtworkRendition, ArtworkRendition.artwork_id == Artwork.id)
    if image_format is not None:
        query = query.where(ArtworkRendition.format == image_format)
    with stack.catalog.session() as session:
        rows = session.execute(query).all()
    return [
        ServedRendition(
            artwork_id=artwork_id,
            path=f"/api/v1/images/{content_type}/{content_id}/{image_type}/{size}",
            storage_key=key,
            etag=strong_etag(checksum),
        )
        for artwork_id, content_type, content_id, image_type, size, key, checksum in rows
    ]


def request_lists(stack: Stack, work_dir: Path) -> dict[str, Path]:
    """One request file per path: API paths (with or without ETags) and presigned S3 URLs."""
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.seaweedfs.endpoint,
        aws_access_key_id=stack.seaweedfs.access_key,
        aws_secret_access_key=stack.seaweedfs.secret_key,
        region_name="us-east-1",
    )
    api, conditional, direct = [], [], []
    for rendition in served_renditions(stack):
        api.append(rendition.path)
        conditional.append(f"{rendition.path}\t{rendition.etag}")
        presigned = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": BUCKETS[Bucket.THUMBNAILS], "Key": rendition.storage_key},
            ExpiresIn=3600,
        )
        direct.append("/" + presigned.split("://", 1)[1].split("/", 1)[1])
    files = {"trivial": work_dir / "trivial.txt"}
    files["trivial"].write_text("/\n")
    for name, lines in (("api", api), ("conditional", conditional), ("direct", direct)):
        files[name] = work_dir / f"{name}.txt"
        files[name].write_text("".join(f"{line}\n" for line in lines))
    return files


def start_api(
    stack: Stack, work_dir: Path, name: str, workers: int, settings: dict[str, str]
) -> tuple[ManagedProcess, str]:
    """`tvdb-images serve` as an operator runs it (default `--loop auto`)."""
    process, port = start_api_server(
        name,
        {**stack.env(), **settings, "PATH": str(Path(sys.executable).parent)},
        log_dir=work_dir,
        extra_args=["--workers", str(workers)],
        timeout=120,
    )
    return process, f"http://127.0.0.1:{port}"


def start_trivial(work_dir: Path, workers: int) -> tuple[ManagedProcess, str]:
    """The bare ASGI app on the uvicorn the API runs on: same workers, event loop and HTTP parser."""
    port = free_port()
    process = ManagedProcess(
        f"trivial-{workers}",
        [
            str(Path(sys.executable).with_name("uvicorn")),
            "benchmarks.serving:trivial_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            event_loop("auto", workers),
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        log_dir=work_dir,
    ).start()
    base = f"http://127.0.0.1:{port}"
    process.wait_http(f"{base}/", timeout=60, ok=(304,))
    return process, base


def check_answers(targets: dict[str, tuple[str, Path]]) -> None:
    """One request of each kind, to be sure every path answers what it should before timing it."""
    statuses = {}
    with httpx.Client(timeout=10) as client:
        for name, (base, requests) in targets.items():
            path, _, etag = requests.read_text().splitlines()[0].partition("\t")
            headers = {"If-None-Match": etag} if etag else {}
            statuses[name] = client.get(base + path, headers=headers).status_code
    if statuses != EXPECTED:
        raise RuntimeError(f"unexpected answers {statuses}, expected {EXPECTED}")


def measure_workers(
    stack: Stack, files: dict[str, Path], work_dir: Path, workers: int, args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    """Every path `--runs` times, interleaved, against API processes with `workers` workers each."""
    settings = dict(args.set)
    processes = []
    try:
        redirect_api, redirect_base = start_api(
            stack, work_dir, f"api-cdn-{workers}", workers, {**settings, "CDN_BASE_URL": CDN}
        )
        processes.append(redirect_api)
        stream_api, stream_base = start_api(stack, work_dir, f"api-stream-{workers}", workers, settings)
        processes.append(stream_api)
        off_api, off_base = start_api(
            stack, work_dir, f"api-stream-off-{workers}", workers, {**settings, "METRICS_ENABLED": "false"}
        )
        processes.append(off_api)
        trivial, trivial_base = start_trivial(work_dir, workers)
        processes.append(trivial)
        targets = {
            "redirect": (redirect_base, files["api"]),
            "stream": (stream_base, files["api"]),
            "stream_metrics_off": (off_base, files["api"]),
            "not_modified": (stream_base, files["conditional"]),
            "trivial_asgi": (trivial_base, files["trivial"]),
            "direct_s3": (stack.seaweedfs.endpoint, files["direct"]),
        }
        check_answers(targets)
        for base, requests in targets.values():  # warm-up: connections, caches, lazy imports
            run_wrk(base, requests, args.connections, 2)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
        for run in range(args.runs):
            order = list(PATHS[run % len(PATHS) :] + PATHS[: run % len(PATHS)])
            for name in order:
                base, requests = targets[name]
                figures = run_wrk(base, requests, args.connections, args.seconds)
                runs[name].append(figures)
                print(
                    f"  workers {workers} run {run} {name:12s} {figures['requests_per_second']:8.0f} req/s"
                    f"  p50 {figures['p50_us'] / 1000:6.1f} ms  p99 {figures['p99_us'] / 1000:6.1f} ms",
                    flush=True,
                )
        return runs
    finally:
        for process in processes:
            process.stop()


def measure_catalog_stats(stack: Stack, work_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The statistics endpoint over a large catalog (`--stats-artworks` synthetic processed rows, five
    renditions each), and how fast `?recount=true` lists storage (`--recount-objects` more objects)."""
    pipeline = PipelineSettings.from_settings(stack.settings())
    bulk_load(stack.database_url, args.stats_artworks, signature=pipeline.signature)
    query_ms = []
    for _ in range(5):
        started = time.perf_counter()
        with stack.catalog.session() as session:
            computed = storage_stats(session)
        query_ms.append((time.perf_counter() - started) * 1000)
    store = store_from_settings(stack.settings())

    def put(index: int) -> None:
        path = artwork_storage_path("movies", 90_000_000 + index, "poster", None)
        store.put(Bucket.THUMBNAILS, f"{path}/thumbnail.webp", b"x" * 100, content_type="image/webp")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(args.recount_objects)))
    api, base = start_api(stack, work_dir, "api-stats", 1, {**dict(args.set), "ADMIN_API_TOKEN": TOKEN})
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            endpoint_ms = []
            for _ in range(20):
                started = time.perf_counter()
                client.get("/api/v1/images/storage/stats").raise_for_status()
                endpoint_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            recount = client.get(
                "/api/v1/images/storage/stats?recount=true", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            recount_seconds = time.perf_counter() - started
            recount.raise_for_status()
    finally:
        api.stop()
    listed = recount.json()["total_objects"] + recount.json()["unrecognized_objects"]
    return {
        "renditions": sum(r["objects"] for r in computed.renditions),
        "query_ms": median(query_ms),
        "endpoint_cached_ms": median(endpoint_ms),
        "recount_objects": listed,
        "recount_seconds": recount_seconds,
        "recount_objects_per_second": listed / recount_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=140)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn workers per API")
    parser.add_argument("--set", type=setting_arg, action="append", default=[], help="NAME=VALUE for the API")
    parser.add_argument("--stats-artworks", type=int, default=50_000, help="synthetic rows for the stats")
    parser.add_argument("--recount-objects", type=int, default=10_000, help="extra objects for the recount")
    parser.add_argument("--no-stats", action="store_true", help="skip the catalog statistics part")
    parser.add_argument("--output", type=Path, help="write the results here instead of results/serving.json")
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    context = machine() | {"niceness": raise_priority(args.priority)}

    with running_stack("bench_serving") as stack, tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(scratch)
        sync_everything(stack, args.artworks)
        files = request_lists(stack, work_dir)
        urls = len(files["api"].read_text().splitlines())
        runs = {str(n): measure_workers(stack, files, work_dir, n, args) for n in args.workers}
        stats = None if args.no_stats else measure_catalog_stats(stack, work_dir, args)

    summary = {workers: summarize(results) for workers, results in runs.items()}
    shares = {
        workers: paths["stream"]["requests_per_second"] / paths["direct_s3"]["requests_per_second"]
        for workers, paths in summary.items()
    }
    overhead = {
        workers: 1
        - paths["stream"]["requests_per_second"] / paths["stream_metrics_off"]["requests_per_second"]
        for workers, paths in summary.items()
    }
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": args.artworks,
        "urls": urls,
        "connections": args.connections,
        "seconds": args.seconds,
        "runs_per_path": args.runs,
        "workers": args.workers,
        "event_loop": {str(w): event_loop("auto", w) for w in args.workers},
        "settings": dict(args.set),
        "summary": summary,
        "stream_share_of_direct_s3": shares,
        "metrics_overhead_on_stream": overhead,
        "runs": runs,
        "catalog_stats": stats,
        "targets": {
            "stream_share_of_direct_s3": 0.5,
            "p99_ms_redirect_and_304": 50,
            "metrics_overhead_on_stream": 0.03,
        },
    }
    rows = [
        [workers, name, s["requests_per_second"], s["mb_per_second"], s["p50_ms"], s["p99_ms"], s["errors"]]
        for workers, paths in summary.items()
        for name, s in paths.items()
    ]
    print(table(["workers", "path", "req/s", "MB/s", "p50 ms", "p99 ms", "errors"], rows))
    for workers, share in shares.items():
        print(f"\nworkers {workers}: streaming = {share:.1%} of direct S3 throughput (target >= 50%)")
        print(
            f"workers {workers}: metrics cost {overhead[workers]:.1%} of streaming throughput (target < 3%)"
        )
    if stats:
        print(f"\ncatalog statistics over {args.stats_artworks} more artworks: {stats}")
    if args.output:
        command = " ".join(["python -m benchmarks.serving", *sys.argv[1:]])
        document = {"benchmark": "serving", "command": command, **result}
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.output}")
    else:
        print(f"wrote {write_results('serving', result)}")


if __name__ == "__main__":
    main()
