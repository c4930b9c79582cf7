"""Partition keys and partition-range run tags: the one place that spells them.

A partition is (content_type, shard), exactly one storage prefix `{content_type}/{shard}/`. Dagster
names it `content_type|shard` (its multi-partition key: dimensions in name order, joined by '|'), and
a run over a range of partitions carries the range in two tags. The pipeline (per-partition reports),
the Dagster definitions and the admin API all use this module, which imports neither Dagster nor
FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterable

from tvdb_images.config import CONTENT_TYPES
from tvdb_images.storage.layout import SHARDS

Partition = tuple[str, str]
"""(content_type, shard)."""

CONTENT_TYPE_DIMENSION = "content_type"
SHARD_DIMENSION = "shard"
KEY_SEPARATOR = "|"

# Dagster's own tags: a run of one partition, and a run over a range of partitions.
PARTITION_NAME_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_key(content_type: str, shard: str) -> str:
    """'series|0a': the key Dagster gives the (content_type, shard) partition."""
    return f"{content_type}{KEY_SEPARATOR}{shard}"


def parse_partition_keys(keys: Iterable[str]) -> tuple[Partition, ...]:
    """(content_type, shard) pairs for partition keys such as 'series|0a'."""
    pairs = []
    for key in keys:
        content_type, shard = str(key).split(KEY_SEPARATOR, 1)
        pairs.append((content_type, shard))
    return tuple(pairs)


def key_partition(key: str) -> Partition:
    """(content_type, shard) of a layout key or storage path `{content_type}/{shard}/...`."""
    content_type, shard = key.split("/", 2)[:2]
    return content_type, shard


def partition_name(content_type: str, storage_path: str) -> str:
    """'series|0a': the partition key of an artwork stored under `{content_type}/{shard}/...`."""
    return partition_key(content_type, key_partition(storage_path)[1])


def range_tags(start: str, end: str) -> dict[str, str]:
    """The tags of a run over the partitions `start`...`end` (keys, in Dagster's order)."""
    return {RANGE_START_TAG: start, RANGE_END_TAG: end}


def every_partition(content_types: Iterable[str] = CONTENT_TYPES) -> set[Partition]:
    """Every (content_type, shard) of these content types."""
    return {(content_type, shard) for content_type in content_types for shard in SHARDS}
