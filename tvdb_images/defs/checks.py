"""Asset checks that hold the catalog and storage to each other, evaluated for each partition.

- every object the catalog references (sources and renditions) exists in storage: no catalog URL
  points at a missing object;
- every processed artwork has all its sizes recorded in the current format.

A run covers up to MAX_PARTITIONS_PER_RUN (256) partitions; each check records one evaluation per partition
(`partition_evaluations`), so the check's Partitions tab shows which partitions passed and which
failed, not one verdict for the whole range.
"""

from collections import defaultdict
from collections.abc import Iterator

import dagster as dg
from dagster._core.events import DagsterEvent

from tvdb_images.catalog import references
from tvdb_images.catalog.scope import Scope
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.check_results import CheckOutcome, partition_evaluations
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ObjectStorageResource
from tvdb_images.partition_keys import key_partition
from tvdb_images.pipeline.repair import find_missing

EXAMPLES_PER_PARTITION = 10


def _examples(items: list[str]) -> dg.MetadataValue:
    shown = [f"- `{item}`" for item in items[:EXAMPLES_PER_PARTITION]]
    if len(items) > EXAMPLES_PER_PARTITION:
        shown.append(f"- ... and {len(items) - EXAMPLES_PER_PARTITION} more")
    return dg.MetadataValue.md("\n".join(shown) or "none")


@dg.asset_check(  # type: ignore[arg-type]  # dagster types a check as returning one result; partitioned ones yield
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every object the catalog references in the partition exists in object storage.",
)
def catalog_objects_exist(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, storage: ObjectStorageResource
) -> Iterator[DagsterEvent | dg.Output]:
    # The same comparison the next sync's discovery makes (one listing per covering prefix, 16 for a
    # 256-partition run): what fails here, that sync stores again.
    partitions = run_partitions(context)
    found = find_missing(catalog.get_catalog(), storage.get_store(), Scope(partitions=partitions))
    context.log.info(
        "%d referenced objects checked against %d listed in %.2f s",
        found.referenced,
        found.listed,
        found.seconds,
    )
    missing: dict[tuple[str, str], list[str]] = defaultdict(list)
    for objects in found.by_artwork.values():
        for obj in objects:
            missing[key_partition(obj.key)].append(f"{obj.bucket.value}/{obj.key}")
    outcomes: dict[tuple[str, str], CheckOutcome] = {}
    for partition in partitions:
        lost = sorted(missing.get(partition, []))
        checked = found.referenced_by_partition.get(partition, 0)
        outcomes[partition] = CheckOutcome(
            passed=not lost,
            description=f"{len(lost)} of {checked} referenced objects are gone from storage; the next "
            "sync_images run of this partition (or a sync of the content item) stores them again"
            if lost
            else None,
            metadata={
                "objects_checked": dg.MetadataValue.int(checked),
                "missing": dg.MetadataValue.int(len(lost)),
                "missing_examples": _examples(lost),
            },
        )
    yield from partition_evaluations(context, outcomes)


@dg.asset_check(  # type: ignore[arg-type]  # dagster types a check as returning one result; partitioned ones yield
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every processed artwork in the partition has all sizes recorded from its latest render.",
)
def processed_artwork_complete(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> Iterator[DagsterEvent | dg.Output]:
    partitions = run_partitions(context)
    with catalog.get_catalog().session() as session:
        found = references.processed_completeness(session, Scope(partitions=partitions))
    incomplete = {
        partition: [str(i) for i in found.incomplete.get(partition, [])] for partition in partitions
    }
    outcomes = {
        partition: CheckOutcome(
            passed=not incomplete[partition],
            description=(
                f"{len(incomplete[partition])} processed artworks lack sizes"
                if incomplete[partition]
                else None
            ),
            metadata={
                "processed": dg.MetadataValue.int(found.processed.get(partition, 0)),
                "incomplete": dg.MetadataValue.int(len(incomplete[partition])),
                "incomplete_examples": _examples(incomplete[partition]),
            },
        )
        for partition in partitions
    }
    yield from partition_evaluations(context, outcomes)


ARTWORK_CHECKS = [catalog_objects_exist, processed_artwork_complete]
