"""Turn a set of partitions with work into few run requests.

A run per partition would mean hundreds of runs after a large import; instead contiguous shards of a
content type are grouped into partition-range runs of at most MAX_PARTITIONS_PER_RUN (256) partitions, the
same grouping a backfill uses. Partitions in a range that have no work cost one cheap query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN
from tvdb_images.partition_keys import partition_key, range_tags
from tvdb_images.storage.layout import SHARDS


def partition_ranges(
    partitions: Iterable[tuple[str, str]], *, chunk: int = MAX_PARTITIONS_PER_RUN, max_gap: int | None = None
) -> list[tuple[str, str]]:
    """(first key, last key) ranges covering `partitions`, never spanning content types or chunks.

    With `max_gap`, a range is also split where more than `max_gap` partitions without work lie
    between two with work: worth it where a run costs little next to its per-partition bookkeeping
    (in-process runs on a SQLite instance, as in the demo); a launched run costs far more.
    """
    by_type: dict[str, set[int]] = defaultdict(set)
    for content_type, shard in partitions:
        by_type[content_type].add(SHARDS.index(shard))
    ranges: list[tuple[str, str]] = []
    for content_type in sorted(by_type):
        groups: list[list[int]] = []
        for index in sorted(by_type[content_type]):
            current = groups[-1] if groups else None
            if (
                current is None
                or index // chunk != current[0] // chunk
                or (max_gap is not None and index - current[-1] - 1 > max_gap)
            ):
                groups.append([index])
            else:
                current.append(index)
        for indexes in groups:
            ranges.append(
                (
                    partition_key(content_type, SHARDS[indexes[0]]),
                    partition_key(content_type, SHARDS[indexes[-1]]),
                )
            )
    return ranges


def range_run_requests(
    partitions: Iterable[tuple[str, str]],
    *,
    run_key_prefix: str | None,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[dg.RunRequest]:
    requests = []
    for start, end in partition_ranges(partitions):
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{start}:{end}" if run_key_prefix else None,
                run_config=dict(run_config or {}),
                tags={**(tags or {}), **range_tags(start, end)},
            )
        )
    return requests
