"""Exact deduplication, measured: objects and bytes stored and sync time, with and without sharing.

A generated catalog of `--artworks` artworks (SQLite + local store, sources served over loopback):
`--exact` of them are byte-identical copies of another artwork's source, `--near` are the same
picture re-encoded (other bytes: exact dedup must not merge them). The same catalog is synced twice,
into fresh stores: once as released (sharing on) and once with every artwork rendered on its own
(the code before sharing). False merges: rendition rows sharing a key although their source
checksums differ (must be 0).

    python -m benchmarks.dedup --artworks 400
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select

from benchmarks.common import machine, table, write_results
from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stats import storage_stats
from tvdb_images.config import Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline import dedup
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket
from tvdb_images.storage.local import LocalObjectStore


def _picture(seed: int, quality: int = 85) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _sources(artworks: int, exact: int, near: int) -> dict[str, bytes]:
    unique = artworks - exact - near
    bodies = {f"/{n}.jpg": _picture(n) for n in range(unique)}
    for n in range(exact):
        bodies[f"/{unique + n}.jpg"] = bodies[f"/{n % unique}.jpg"]
    for n in range(near):
        bodies[f"/{unique + exact + n}.jpg"] = _picture(n % unique, quality=70)
    return bodies


def _serve(bodies: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run(bodies: dict[str, bytes], netloc: str, *, sharing: bool, workdir: Path) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'catalog.db'}"
    migrate.upgrade(url)
    catalog = Catalog(url)
    store = LocalObjectStore(workdir / "storage")
    store.ensure_buckets()
    lines = [
        json.dumps(
            {
                "content_type": "series",
                "id": 1000 + n,
                "artworks": [{"id": 1 + n, "type": "poster", "url": f"http://{netloc}{path}"}],
            }
        )
        for n, path in enumerate(bodies)
    ]
    import_catalog_lines(catalog, lines)
    settings = PipelineSettings.from_settings(
        Settings.model_validate({"ALLOWED_SOURCE_HOSTS": netloc, "RENDER_WORKERS": 2})
    )
    original = dedup.RunShares.render_once
    if not sharing:
        dedup.RunShares.render_once = lambda self, task, render: render()  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        with ImageFetcher(settings.fetch) as fetcher:
            _download, render = sync_scope(catalog, store, fetcher, settings, Scope())
        elapsed = time.perf_counter() - started
    finally:
        dedup.RunShares.render_once = original  # type: ignore[method-assign]
    objects = list(store.list(Bucket.THUMBNAILS, ""))
    with catalog.session() as session:
        stats = storage_stats(session)
        by_key: dict[str, set[str]] = {}
        for key, checksum in session.execute(
            select(ArtworkRendition.storage_key, Artwork.source_checksum).join(
                Artwork, Artwork.id == ArtworkRendition.artwork_id
            )
        ):
            by_key.setdefault(key, set()).add(checksum)
    return {
        "sharing": sharing,
        "rendered_ok": render.succeeded,
        "failed": render.failed,
        "rendition_objects": len(objects),
        "rendition_bytes": sum(o.size for o in objects),
        "sync_seconds": round(elapsed, 2),
        "false_merges": sum(1 for checksums in by_key.values() if len(checksums) > 1),
        "catalog_bytes_saved_by_dedup": stats.bytes_saved_by_dedup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artworks", type=int, default=400)
    parser.add_argument("--exact-share", type=float, default=0.2)
    parser.add_argument("--near-share", type=float, default=0.1)
    args = parser.parse_args()
    exact, near = int(args.artworks * args.exact_share), int(args.artworks * args.near_share)
    bodies = _sources(args.artworks, exact, near)
    server = _serve(bodies)
    netloc = f"127.0.0.1:{server.server_address[1]}"
    runs = []
    try:
        for sharing in (False, True):
            with tempfile.TemporaryDirectory() as workdir:
                runs.append(_run(bodies, netloc, sharing=sharing, workdir=Path(workdir)))
    finally:
        server.shutdown()
    results = {"artworks": args.artworks, "exact_duplicates": exact, "near_duplicates": near}
    results |= {"machine": machine(), "runs": runs}
    print(table(list(runs[0]), [list(r.values()) for r in runs]))
    print(write_results("dedup", results))


if __name__ == "__main__":
    main()
