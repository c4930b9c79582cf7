"""Recount storage by listing it: what is really in the buckets, to compare with the catalog's figures.

Listing touches only the layout's prefixes (`{content_type}/` in each bucket) and stops after
`max_objects`, so one call is bounded; S3 lists 1,000 keys a request. Objects are grouped like the
catalog statistics: renditions by content type, size and format, originals by content type; keys
under those prefixes that the layout cannot produce are counted as unrecognized.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tvdb_images.catalog.stats import StorageStats
from tvdb_images.config import CONTENT_TYPES
from tvdb_images.registry import FORMAT_BY_EXTENSION
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import match_layout_key

# About 35 s on SeaweedFS and 12 s on a local directory at the rates measured on a 2-core machine.
DEFAULT_MAX_OBJECTS = 100_000


@dataclass
class Recount:
    stats: StorageStats
    truncated: bool
    unrecognized: int
    listed: int


def recount_storage(
    store: ObjectStore, *, max_objects: int = DEFAULT_MAX_OBJECTS, crops: tuple[str, ...] = ()
) -> Recount:
    renditions: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    originals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unrecognized = 0
    listed = 0
    truncated = False
    for bucket in (Bucket.THUMBNAILS, Bucket.ORIGINALS):
        for content_type in CONTENT_TYPES:
            for info in store.list(bucket, f"{content_type}/"):
                if listed >= max_objects:
                    truncated = True
                    break
                listed += 1
                match = match_layout_key(info.key, crops)
                if match is None:
                    unrecognized += 1
                    continue
                if bucket is Bucket.ORIGINALS:
                    totals = originals[content_type]
                else:
                    known = FORMAT_BY_EXTENSION.get(match["ext"])
                    image_format = known.name if known else match["ext"]
                    totals = renditions[(content_type, match["size"], image_format)]
                totals[0] += 1
                totals[1] += info.size
            if truncated:
                break
        if truncated:
            break

    stats = StorageStats()
    for (content_type, size, image_format), (count, size_bytes) in sorted(renditions.items()):
        stats.renditions.append(
            {
                "content_type": content_type,
                "size": size,
                "format": image_format,
                "objects": count,
                "bytes": size_bytes,
            }
        )
    for content_type, (count, size_bytes) in sorted(originals.items()):
        stats.originals.append({"content_type": content_type, "objects": count, "bytes": size_bytes})
    stats.total_objects = sum(r["objects"] for r in stats.renditions) + sum(
        o["objects"] for o in stats.originals
    )
    stats.total_bytes = sum(r["bytes"] for r in stats.renditions) + sum(o["bytes"] for o in stats.originals)
    return Recount(stats=stats, truncated=truncated, unrecognized=unrecognized, listed=listed)
