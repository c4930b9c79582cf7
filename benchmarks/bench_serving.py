"""Serving API benchmark: image throughput through a real `tvdb-images serve` process, catalog stats
latency on a large catalog, and how fast `?recount=true` lists storage.

    python benchmarks/bench_serving.py [--seconds 5] [--concurrency 8] [--artworks 50000] [--objects 10000]

Runs on this machine only: PostgreSQL at 127.0.0.1:5432 (a scratch database is created and dropped), a
SeaweedFS started here, the image corpus served over loopback. Setups: `embedded` (SQLite + local
directory) and `production` (PostgreSQL + SeaweedFS S3), both with one uvicorn worker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tvdb_images.catalog import migrate  # noqa: E402
from tvdb_images.catalog.db import Catalog  # noqa: E402
from tvdb_images.catalog.importer import import_catalog_lines  # noqa: E402
from tvdb_images.catalog.models import Artwork, ArtworkRendition  # noqa: E402
from tvdb_images.catalog.stats import storage_stats  # noqa: E402
from tvdb_images.catalog.work import Scope  # noqa: E402
from tvdb_images.config import Settings  # noqa: E402
from tvdb_images.fetch import ImageFetcher  # noqa: E402
from tvdb_images.pipeline.settings import PipelineSettings  # noqa: E402
from tvdb_images.pipeline.sync import sync_scope  # noqa: E402
from tvdb_images.storage import Bucket, ObjectStore, store_from_settings  # noqa: E402
from tvdb_images.storage.layout import SIZES, artwork_storage_path, shard_of  # noqa: E402
from tvdb_images_tests.support import services  # noqa: E402
from tvdb_images_tests.support.corpus import CORPUS_DIR  # noqa: E402
from tvdb_images_tests.support.origins import LoopbackOrigin  # noqa: E402
from tvdb_images_tests.support.processes import ManagedProcess, start_api_server  # noqa: E402
from tvdb_images_tests.support.serving_data import catalog_lines  # noqa: E402

TOKEN = "benchmark-admin-token"
ITEMS = [
    ("series", 1, 1, "poster", "tvdb/poster_a.jpg", "eng", 10),
    ("series", 1, 2, "fanart", "tvdb/fanart_a.jpg", "eng", 10),
]


def measure(call: Callable[[httpx.Client], httpx.Response], *, seconds: float, concurrency: int) -> dict:
    """Run `call` from `concurrency` threads for `seconds`; requests/s, latency percentiles, MB/s."""
    latencies: list[float] = []
    received = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            mine: list[float] = []
            size = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = call(client)
                mine.append(time.perf_counter() - started)
                size += len(response.content)
                assert response.status_code in (200, 304), response.status_code
            with lock:
                latencies.extend(mine)
                received[0] += size

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
        "mb_per_s": round(received[0] / elapsed / 1e6, 2),
    }


def fill_catalog(settings: Settings, origin: LoopbackOrigin) -> tuple[Catalog, ObjectStore]:
    migrate.upgrade(settings.resolved_database_url)
    catalog = Catalog(settings.resolved_database_url)
    store = store_from_settings(settings)
    store.ensure_buckets()
    import_catalog_lines(catalog, catalog_lines(ITEMS, origin))
    pipeline = PipelineSettings.from_settings(settings)
    with ImageFetcher(pipeline.fetch) as fetcher:
        _download, render = sync_scope(catalog, store, fetcher, pipeline, Scope())
    assert render.succeeded == len(ITEMS), render.as_dict()
    return catalog, store


def add_synthetic_catalog(catalog: Catalog, artworks: int) -> None:
    """Processed artwork rows with five renditions each (no objects): what the stats query reads."""
    batch = 5000
    for start in range(1000, 1000 + artworks, batch):
        rows, renditions = [], []
        for artwork_id in range(start, min(start + batch, 1000 + artworks)):
            content_type = ("series", "movies", "episodes", "seasons", "people")[artwork_id % 5]
            path = artwork_storage_path(content_type, artwork_id, "poster", None)
            rows.append(
                {
                    "id": artwork_id,
                    "content_type": content_type,
                    "content_id": artwork_id,
                    "image_type": "poster",
                    "source_url": f"https://artworks.thetvdb.com/{artwork_id}.jpg",
                    "shard": shard_of(content_type, artwork_id),
                    "storage_path": path,
                    "status": "processed",
                    "source_format": "jpeg",
                    "file_size": 150_000,
                }
            )
            renditions.extend(
                {
                    "artwork_id": artwork_id,
                    "size": size,
                    "format": "webp",
                    "storage_key": f"{path}/{size}.webp",
                    "url": f"https://cdn.example/{path}/{size}.webp",
                    "width": 100,
                    "height": 100,
                    "bytes": 10_000,
                    "content_type": "image/webp",
                    "checksum": "0" * 64,
                    "source_checksum": "1" * 64,
                    "render_signature": "bench",
                }
                for size in SIZES
            )
        with catalog.session() as session:
            session.execute(insert(Artwork), rows)
            session.execute(insert(ArtworkRendition), renditions)


def add_synthetic_objects(store: ObjectStore, count: int) -> None:
    def put(index: int) -> None:
        path = artwork_storage_path("movies", 10_000_000 + index, "poster", None)
        store.put(Bucket.THUMBNAILS, f"{path}/thumbnail.webp", b"x" * 100, content_type="image/webp")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def serve(env: dict[str, str], workdir: Path) -> tuple[str, ManagedProcess]:
    process, port = start_api_server("serve", {**os.environ, **env}, cwd=workdir, log_dir=workdir)
    return f"http://127.0.0.1:{port}", process


def bench_setup(
    name: str, values: dict[str, str], origin: LoopbackOrigin, args: argparse.Namespace, work: Path
):
    settings = Settings.model_validate(values)
    catalog, store = fill_catalog(settings, origin)
    base, process = serve(values, work)
    results: dict[str, dict] = {}
    try:
        small = f"{base}/api/v1/images/series/1/poster/small"
        large = f"{base}/api/v1/images/series/1/fanart/large"
        etag = httpx.get(small).headers["etag"]
        for label, call in (
            ("image small (poster 245x360 WebP)", lambda c: c.get(small)),
            ("image large (fanart 1920x1080 WebP)", lambda c: c.get(large)),
            ("304 revalidation", lambda c: c.get(small, headers={"If-None-Match": etag})),
            ("artwork metadata", lambda c: c.get(f"{base}/api/v1/images/artwork/1")),
        ):
            results[label] = measure(call, seconds=args.seconds, concurrency=args.concurrency)
            print(f"  {name:10} {label:38} {results[label]}", flush=True)

        add_synthetic_catalog(catalog, args.artworks)
        query_times = []
        for _ in range(5):
            started = time.perf_counter()
            with catalog.session() as session:
                computed = storage_stats(session)
            query_times.append(time.perf_counter() - started)
        with httpx.Client(timeout=60) as client:
            endpoint_times = []
            for _ in range(20):
                started = time.perf_counter()
                client.get(f"{base}/api/v1/images/storage/stats").raise_for_status()
                endpoint_times.append(time.perf_counter() - started)
        results["stats"] = {
            "renditions": sum(r["objects"] for r in computed.renditions),
            "query_ms": round(statistics.median(query_times) * 1000, 1),
            "endpoint_cached_ms": round(statistics.median(endpoint_times) * 1000, 1),
        }
        print(f"  {name:10} stats over {args.artworks} artworks: {results['stats']}", flush=True)

        add_synthetic_objects(store, args.objects)
        started = time.perf_counter()
        body = httpx.get(
            f"{base}/api/v1/images/storage/stats?recount=true",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=600,
        ).json()
        elapsed = time.perf_counter() - started
        listed = body["total_objects"] + body["unrecognized_objects"]
        results["recount"] = {
            "objects": listed,
            "seconds": round(elapsed, 2),
            "objects_per_s": round(listed / elapsed),
        }
        print(f"  {name:10} recount: {results['recount']}", flush=True)
    finally:
        process.stop()
        catalog.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--artworks", type=int, default=50_000)
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} workdir={work}", flush=True)
    database = services.unique_name("bench_serving")
    with LoopbackOrigin(CORPUS_DIR) as origin, services.seaweedfs_server(work / "seaweedfs") as seaweedfs:
        common = {"ALLOWED_SOURCE_HOSTS": origin.netloc, "ADMIN_API_TOKEN": TOKEN, "RENDER_WORKERS": "2"}
        embedded = common | {
            "DATABASE_URL": f"sqlite:///{work / 'catalog.db'}",
            "LOCAL_STORAGE_DIR": str(work / "storage"),
        }
        url = services.create_database(database)
        try:
            production = common | {
                "DATABASE_URL": url,
                "STORAGE_BACKEND": "s3",
                "S3_ENDPOINT_URL": seaweedfs.endpoint,
                "S3_ACCESS_KEY_ID": seaweedfs.access_key,
                "S3_SECRET_ACCESS_KEY": seaweedfs.secret_key,
                "S3_BUCKET_ORIGINALS": "bench-originals",
                "S3_BUCKET_THUMBNAILS": "bench-thumbnails",
            }
            for name, values in (("embedded", embedded), ("production", production)):
                bench_setup(name, values, origin, args, work / name)
        finally:
            services.drop_database(database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
