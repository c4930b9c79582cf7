"""Deduplication, measured: objects and bytes stored, sync time and false merges, without deduplication,
with exact deduplication (the default), and with near-duplicates served from their best member too.

A generated catalog of `--artworks` artworks (SQLite + local store, sources served over loopback),
deterministic: `--exact-share` of them are byte-identical copies of another artwork's source,
`--near-share` the same picture re-encoded (JPEG q60) or resized (75%, q80): other bytes, which exact
deduplication must not merge and the perceptual hash should. The rest are distinct pictures. The same
catalog is synced three times into fresh stores: DEDUP_EXACT_DUPLICATES=false; the default; the default
then `fold_near_duplicates` (its time included) and orphan cleanup, so the store holds what is served.

False merges: exact, rendition keys named by artworks whose source checksums differ, in the exact run
(must be 0); near, artworks served from an object rendered from another picture. Near recall: near
copies served from their picture's renditions, of all near copies.

    python -m benchmarks.dedup --artworks 2000
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
import time
from datetime import timedelta
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
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.near_fold import fold_near_duplicates
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SHARDS
from tvdb_images.storage.local import LocalObjectStore


def _picture(seed: int, quality: int = 85, scale: float = 1.0) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    if scale != 1.0:
        image = image.resize((round(640 * scale), round(480 * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _sources(artworks: int, exact: int, near: int) -> tuple[dict[str, bytes], dict[str, int]]:
    """Each path's body, and which picture it shows (the ground truth for merges)."""
    unique = artworks - exact - near
    bodies = {f"/{n}.jpg": _picture(n) for n in range(unique)}
    pictures = {f"/{n}.jpg": n for n in range(unique)}
    for n in range(exact):
        bodies[f"/{unique + n}.jpg"] = bodies[f"/{n % unique}.jpg"]
        pictures[f"/{unique + n}.jpg"] = n % unique
    for n in range(near):
        picture = (n * 7 + 3) % unique  # other pictures than the exact copies' first ones
        resized = n % 2 == 1
        bodies[f"/{unique + exact + n}.jpg"] = (
            _picture(picture, quality=80, scale=0.75) if resized else _picture(picture, quality=60)
        )
        pictures[f"/{unique + exact + n}.jpg"] = picture
    return bodies, pictures


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


def _run(
    bodies: dict[str, bytes],
    pictures: dict[str, int],
    near_paths: set[str],
    netloc: str,
    *,
    mode: str,
    workdir: Path,
) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'catalog.db'}"
    migrate.upgrade(url)
    catalog = Catalog(url)
    store = LocalObjectStore(workdir / "storage")
    store.ensure_buckets()
    paths = list(bodies)
    lines = [
        json.dumps(
            {
                "content_type": "series",
                "id": 1000 + n,
                "artworks": [{"id": 1 + n, "type": "poster", "url": f"http://{netloc}{path}"}],
            }
        )
        for n, path in enumerate(paths)
    ]
    import_catalog_lines(catalog, lines)
    picture_of = {1 + n: pictures[path] for n, path in enumerate(paths)}
    near_copies = {1 + n for n, path in enumerate(paths) if path in near_paths}
    settings = PipelineSettings.from_settings(
        Settings.model_validate(
            {"ALLOWED_SOURCE_HOSTS": netloc, "RENDER_WORKERS": 2, "DEDUP_EXACT_DUPLICATES": mode != "none"}
        )
    )
    started = time.perf_counter()
    with ImageFetcher(settings.fetch) as fetcher:
        _download, render = sync_scope(catalog, store, fetcher, settings, Scope())
    fold_seconds = 0.0
    folded = 0
    if mode == "exact+near":
        fold_started = time.perf_counter()
        folded = fold_near_duplicates(catalog, store).folded
        fold_seconds = time.perf_counter() - fold_started
    elapsed = time.perf_counter() - started
    clean_orphans(catalog, store, every_partition_pair(), grace=timedelta(0), dry_run=False)
    objects = list(store.list(Bucket.THUMBNAILS, ""))
    originals = list(store.list(Bucket.ORIGINALS, ""))
    with catalog.session() as session:
        stats = storage_stats(session)
        checksums: dict[str, set[str]] = {}
        owners: dict[str, int] = {}
        keys_of: dict[int, set[str]] = {}
        for artwork_id, key, checksum, shared in session.execute(
            select(
                ArtworkRendition.artwork_id,
                ArtworkRendition.storage_key,
                Artwork.source_checksum,
                ArtworkRendition.shared,
            ).join(Artwork, Artwork.id == ArtworkRendition.artwork_id)
        ):
            checksums.setdefault(key, set()).add(checksum)
            keys_of.setdefault(artwork_id, set()).add(key)
            if not shared:
                owners[key] = artwork_id
    wrong = {a for a, keys in keys_of.items() if any(picture_of[owners[k]] != picture_of[a] for k in keys)}
    served_from_own_picture = {
        a for a in near_copies if a in keys_of and any(owners[k] != a for k in keys_of[a]) and a not in wrong
    }
    catalog.dispose()
    return {
        "mode": mode,
        "rendered_ok": render.succeeded,
        "failed": render.failed,
        "rendition_objects": len(objects),
        "rendition_bytes": sum(o.size for o in objects),
        "original_objects": len(originals),
        "original_bytes": sum(o.size for o in originals),
        "sync_seconds": round(elapsed, 2),
        "near_fold_seconds": round(fold_seconds, 2),
        "near_folded": folded,
        "exact_false_merges": sum(1 for c in checksums.values() if len(c) > 1) if mode == "exact" else None,
        "near_false_merges": len(wrong),
        "near_recall": round(len(served_from_own_picture) / len(near_copies), 4) if near_copies else None,
        "catalog_bytes_saved_by_dedup": stats.bytes_saved_by_dedup,
        "catalog_bytes_saved_by_near_dedup": stats.bytes_saved_by_near_dedup,
    }


def every_partition_pair() -> list[tuple[str, str]]:
    return [("series", shard) for shard in SHARDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artworks", type=int, default=400)
    parser.add_argument("--exact-share", type=float, default=0.2)
    parser.add_argument("--near-share", type=float, default=0.1)
    args = parser.parse_args()
    exact, near = int(args.artworks * args.exact_share), int(args.artworks * args.near_share)
    bodies, pictures = _sources(args.artworks, exact, near)
    near_paths = set(list(bodies)[args.artworks - near :])
    server = _serve(bodies)
    netloc = f"127.0.0.1:{server.server_address[1]}"
    runs = []
    try:
        for mode in ("none", "exact", "exact+near"):
            with tempfile.TemporaryDirectory() as workdir:
                runs.append(_run(bodies, pictures, near_paths, netloc, mode=mode, workdir=Path(workdir)))
                print(runs[-1], flush=True)
    finally:
        server.shutdown()
    results = {"artworks": args.artworks, "exact_duplicates": exact, "near_duplicates": near}
    results |= {"machine": machine(), "runs": runs}
    print(table(list(runs[0]), [list(r.values()) for r in runs]))
    print(write_results("dedup", results))


if __name__ == "__main__":
    main()
