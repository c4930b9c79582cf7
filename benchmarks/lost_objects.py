"""What finding lost objects costs a sync's discovery: one listing of a partition's prefix compared with
the catalog (`pipeline.repair.find_missing`), against a HEAD per referenced object.

    python -m benchmarks.lost_objects [--artworks 1000] [--rounds 3]

SeaweedFS and a fresh PostgreSQL catalog: `--artworks` processed artworks in one partition, each with a
source and five renditions recorded and stored (small placeholder objects: listing and HEAD cost the
same whatever the size), so 6 objects per artwork. Wall seconds, median over rounds.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import insert

from benchmarks.common import machine, median, table, write_results
from benchmarks.stack import running_stack
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.pipeline.repair import find_missing, referenced_objects
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import SIZES, artwork_storage_path, original_key, shard_of

CONTENT_TYPE = "series"


def ids_in_one_shard(count: int) -> tuple[str, list[int]]:
    shard = shard_of(CONTENT_TYPE, 1)
    ids = [i for i in range(1, 1_000_000) if shard_of(CONTENT_TYPE, i) == shard][:count]
    return shard, ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    context = machine()
    shard, ids = ids_in_one_shard(args.artworks)
    with running_stack("bench_lost", with_origin=False) as stack:
        store = store_from_settings(stack.settings())
        store.ensure_buckets()
        artworks, renditions, objects = [], [], []
        for content_id in ids:
            path = artwork_storage_path(CONTENT_TYPE, content_id, "poster", None)
            artworks.append(
                {
                    "id": content_id,
                    "content_type": CONTENT_TYPE,
                    "content_id": content_id,
                    "image_type": "poster",
                    "source_url": f"https://artworks.thetvdb.com/{content_id}.jpg",
                    "shard": shard,
                    "storage_path": path,
                    "status": ArtworkStatus.PROCESSED.value,
                    "source_format": "jpeg",
                    "source_checksum": "1" * 64,
                }
            )
            objects.append((Bucket.ORIGINALS, original_key(path, "jpeg")))
            for size in SIZES:
                key = f"{path}/{size}.webp"
                objects.append((Bucket.THUMBNAILS, key))
                renditions.append(
                    {
                        "artwork_id": content_id,
                        "size": size,
                        "format": "webp",
                        "storage_key": key,
                        "url": key,
                        "width": 1,
                        "height": 1,
                        "bytes": 1,
                        "content_type": "image/webp",
                        "checksum": "0" * 64,
                        "source_checksum": "1" * 64,
                        "render_signature": "bench",
                    }
                )
        catalog = stack.catalog
        with catalog.session() as session:
            session.execute(insert(Artwork), artworks)
            session.execute(insert(ArtworkRendition), renditions)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda o: store.put(o[0], o[1], b"x", content_type="image/webp"), objects))
        scope = Scope(partitions=((CONTENT_TYPE, shard),))
        listing, heads = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            found = find_missing(catalog, store, scope)
            listing.append(time.perf_counter() - started)
            if found.by_artwork or found.listed != len(objects):
                raise RuntimeError(f"unexpected comparison: {found.listed} listed, {found.keys[:3]} missing")
            started = time.perf_counter()
            with catalog.session() as session:
                referenced = referenced_objects(session, scope)
            missing = [o for o in referenced if store.head(o.bucket, o.key) is None]
            heads.append(time.perf_counter() - started)
            if missing:
                raise RuntimeError("HEAD found objects missing")
        catalog.dispose()
    result = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": len(ids),
        "objects": len(objects),
        "listing_seconds": listing,
        "head_seconds": heads,
        "listing_median": median(listing),
        "head_median": median(heads),
    }
    print(
        table(
            ["method", "objects", "seconds", "objects/s"],
            [
                ["one listing + catalog", len(objects), median(listing), len(objects) / median(listing)],
                ["HEAD per object", len(objects), median(heads), len(objects) / median(heads)],
            ],
        )
    )
    print(f"wrote {write_results('lost_objects', result)}")


if __name__ == "__main__":
    main()
