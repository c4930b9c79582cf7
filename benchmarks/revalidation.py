"""What a revalidation pass over N artworks (default 10,000) costs in requests and time, against a
loopback origin that sends ETag/Last-Modified and answers 304.

The catalog is built by the real download stage (every source fetched, validated, stored and its
validators recorded), then marked processed; renditions are not rendered for the unchanged ones, as a
pass never reads them. Each scenario revalidates every source (`checked_before=None`) and reports the
requests the origin saw (by method and status), bytes downloaded, wall and CPU seconds:

1. validators recorded, nothing changed: one conditional GET each, all 304;
2. validators recorded, 1% of the files replaced: 304s plus a GET and a re-render for each changed one;
3. an origin without validators, SOURCE_REVALIDATE_WITHOUT_VALIDATORS=head;
4. the same with SOURCE_REVALIDATE_WITHOUT_VALIDATORS=get.

    python -m benchmarks.revalidation [--artworks 10000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import update

from benchmarks.common import cpu_seconds, machine, table, write_results
from benchmarks.machine_load import machine_busy_cores, sample
from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.revalidate import revalidate_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.validating_origin import ValidatingOrigin


def _base_jpeg(colour: tuple[int, int, int]) -> bytes:
    """A 300x450 poster-shaped gradient (about 4.7 KB as JPEG)."""
    image = Image.linear_gradient("L").resize((300, 450)).convert("RGB")
    image = Image.blend(image, Image.new("RGB", image.size, colour), 0.5)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _variant(base: bytes, index: int) -> bytes:
    """The base JPEG with a comment segment naming `index`: a valid, distinct file per artwork."""
    comment = f"artwork {index}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def _catalog_lines(origin: ValidatingOrigin, count: int) -> list[str]:
    return [
        json.dumps(
            {
                "content_type": "series",
                "id": index + 1,
                "artworks": [{"id": index + 1, "type": "poster", "url": origin.url(f"/p/{index}.jpg")}],
            }
        )
        for index in range(count)
    ]


def _pass(
    name: str,
    catalog: Catalog,
    store: LocalObjectStore,
    origin: ValidatingOrigin,
    settings: PipelineSettings,
    *,
    render: bool = False,
) -> dict[str, Any]:
    origin.reset_counts()
    machine_before, cpu_before, started = sample(), cpu_seconds(), time.perf_counter()
    with ImageFetcher(settings.fetch) as fetcher:
        report = revalidate_sources(catalog, store, fetcher, settings, Scope(), checked_before=None)
    revalidate_wall = time.perf_counter() - started
    render_wall = 0.0
    rendered = 0
    if render:
        render_started = time.perf_counter()
        rendered = render_stored_sources(catalog, store, settings, Scope()).succeeded
        render_wall = time.perf_counter() - render_started
    wall = time.perf_counter() - started
    cpu, machine_after = cpu_seconds() - cpu_before, sample()
    requests = {
        f"{method} {status}": n
        for (method, status), n in sorted(
            _by_method_status(origin).items(), key=lambda item: (item[0][0], item[0][1])
        )
    }
    return {
        "scenario": name,
        "artworks": report.attempted,
        "outcomes": dict(report.outcomes),
        "origin_requests": requests,
        "requests_total": sum(requests.values()),
        "bytes_downloaded": report.bytes_in,
        "revalidate_seconds": round(revalidate_wall, 2),
        "artworks_per_second": round(report.attempted / revalidate_wall, 1) if revalidate_wall else 0.0,
        "rendered": rendered,
        "render_seconds": round(render_wall, 2),
        "cpu_seconds": round(cpu, 2),
        "machine_busy_cores": round(machine_busy_cores(machine_before, machine_after, wall), 2),
    }


def _by_method_status(origin: ValidatingOrigin) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for (method, _path, status), n in origin.requests.items():
        counts[(method, status)] = counts.get((method, status), 0) + n
    return counts


def run(count: int, database_url: str | None, root: Path) -> dict[str, Any]:
    url = database_url or f"sqlite:///{root / 'catalog.db'}"
    migrate.upgrade(url)
    catalog = Catalog(url)
    store = LocalObjectStore(root / "storage")
    store.ensure_buckets()
    base, changed_base = _base_jpeg((200, 60, 40)), _base_jpeg((40, 60, 200))
    results: list[dict[str, Any]] = []
    with ValidatingOrigin() as origin:
        for index in range(count):
            origin.put(f"/p/{index}.jpg", _variant(base, index))
        values = {"ALLOWED_SOURCE_HOSTS": origin.netloc, "FETCH_MAX_RETRIES": 0}
        settings = PipelineSettings.from_settings(Settings.model_validate(values))
        report = import_catalog_lines(catalog, _catalog_lines(origin, count))
        assert not report.errors, report.errors[:3]
        started = time.perf_counter()
        with ImageFetcher(settings.fetch) as fetcher:
            download = download_sources(catalog, store, fetcher, settings, Scope())
        assert download.succeeded == count, download.as_dict()
        setup_seconds = time.perf_counter() - started
        with catalog.session() as session:
            session.execute(update(Artwork).values(status=ArtworkStatus.PROCESSED.value))

        results.append(_pass("validators, nothing changed", catalog, store, origin, settings))
        changed = max(1, count // 100)
        for index in range(changed):
            origin.put(f"/p/{index * 100}.jpg", _variant(changed_base, index * 100))
        results.append(_pass("validators, 1% changed", catalog, store, origin, settings, render=True))

        for index in range(count):
            resource = origin.resources[f"/p/{index}.jpg"]
            origin.put(f"/p/{index}.jpg", resource.body, validators=False)
        with catalog.session() as session:
            session.execute(update(Artwork).values(source_etag=None, source_last_modified=None))
        head = PipelineSettings.from_settings(
            Settings.model_validate(values | {"SOURCE_REVALIDATE_WITHOUT_VALIDATORS": "head"})
        )
        results.append(_pass("no validators, HEAD", catalog, store, origin, head))
        get = PipelineSettings.from_settings(
            Settings.model_validate(values | {"SOURCE_REVALIDATE_WITHOUT_VALIDATORS": "get"})
        )
        results.append(_pass("no validators, GET", catalog, store, origin, get))
    catalog.dispose()
    return {
        "artworks": count,
        "catalog": catalog.dialect,
        "file_bytes": len(_variant(base, 0)),
        "setup_download_seconds": round(setup_seconds, 1),
        "fetch_concurrency_per_host": settings.fetch.per_host_concurrency,
        "download_workers": settings.download_workers,
        "scenarios": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artworks", type=int, default=10_000)
    parser.add_argument("--database-url", help="catalog (default: a fresh SQLite file); an empty database")
    args = parser.parse_args()
    before = machine()
    with tempfile.TemporaryDirectory(prefix="revalidation-bench-") as tmp:
        figures = run(args.artworks, args.database_url, Path(tmp))
    rows = [
        [
            s["scenario"],
            s["requests_total"],
            ", ".join(f"{k}: {v}" for k, v in s["origin_requests"].items()),
            s["bytes_downloaded"],
            s["revalidate_seconds"],
            s["artworks_per_second"],
            s["rendered"],
            s["cpu_seconds"],
            s["machine_busy_cores"],
        ]
        for s in figures["scenarios"]
    ]
    print(
        table(
            [
                "scenario",
                "requests",
                "by method and status",
                "bytes downloaded",
                "seconds",
                "artworks/s",
                "re-rendered",
                "CPU s",
                "machine busy cores",
            ],
            rows,
        )
    )
    name = "revalidation" if figures["catalog"] == "sqlite" else f"revalidation_{figures['catalog']}"
    path = write_results(name, {"machine_before": before, "machine_after": machine(), **figures})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
