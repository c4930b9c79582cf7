"""Partitions: content type x storage shard, so one partition is exactly one storage prefix.

1,280 static partitions (5 x 256) keep Dagster's UI and daemon fast whatever the catalog's size (one
dynamic partition per image would not), and discovery, upload, cleanup and stats of a partition touch
only `{content_type}/{shard}/`. The keys and run tags themselves are spelled in
`tvdb_images.partition_keys` (no Dagster), which the pipeline and the admin API share.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from tvdb_images.config import CONTENT_TYPES
from tvdb_images.partition_keys import (
    CONTENT_TYPE_DIMENSION,
    PARTITION_NAME_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SHARD_DIMENSION,
    parse_partition_keys,
)
from tvdb_images.storage.layout import SHARDS


class RangeSafeMultiPartitions(dg.MultiPartitionsDefinition):
    """content_type x shard, whose run tags name a partition by `dagster/partition` alone.

    Dagster 1.13.27 builds a job backfill's range runs from the first partition's tags minus
    `dagster/partition`, so the per-dimension tags (`dagster/partition/content_type`,
    `dagster/partition/shard`) of that one partition stay on every range run, and they outrank the
    range tags: each run of `sync_images`' "Materialize all..." backfill recorded one partition while
    it claimed 128 at the time (dagster-io/dagster#28861). Without the dimension tags the range tags decide,
    as they do for Lineage backfills, schedules, sensors and the admin API. A single-partition run
    keeps `dagster/partition` (`series|0a`), which Dagster reads the same way.
    """

    def get_tags_for_partition_key(self, partition_key: str) -> Mapping[str, str]:
        return {PARTITION_NAME_TAG: str(partition_key)}


artwork_partitions = RangeSafeMultiPartitions(
    {
        CONTENT_TYPE_DIMENSION: dg.StaticPartitionsDefinition(list(CONTENT_TYPES)),
        SHARD_DIMENSION: dg.StaticPartitionsDefinition(list(SHARDS)),
    }
)

# A backfill of every partition becomes 5 runs, not 1,280: each run handles the 256 shards of one content
# type. Each run pays a fixed cost (a new process importing Dagster and the code location, its events,
# its checks, about 2 s of CPU): at 128 a 2,002-artwork sync ran at 73.9% of the two-core engine
# against 67.4% at 64, medians of three, and 256 halves what a backfill with little to do spends on
# runs again (docs/performance.md, "Backfill launch"); five runs still keep the two runs TVDB allows
# busy.
MAX_PARTITIONS_PER_RUN = 256
artwork_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)


def run_partitions(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[tuple[str, str], ...]:
    """The (content_type, shard) pairs a run covers: exactly the partitions Dagster records for it.

    A run whose range tags name other partitions than Dagster gives it (one queued under the old
    tags of a job backfill, see RangeSafeMultiPartitions) fails before doing anything, so no run
    processes partitions it does not record, or records partitions it did not process.
    """
    partitions = parse_partition_keys(context.partition_keys)
    tags = context.run.tags
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        claimed = parse_partition_keys(
            artwork_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
        )
        if claimed != partitions:
            raise dg.Failure(
                description=(
                    f"this run's tags name partitions {start}...{end} ({len(claimed)}) but Dagster "
                    f"records it for {len(partitions)} partition(s) ({context.partition_keys[0]}...): "
                    "launch it again as a backfill from Lineage or the job page"
                )
            )
    return partitions
