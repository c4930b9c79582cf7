"""Asset checks that hold the catalog and storage to each other, evaluated for each partition.

- every object the catalog references (sources and renditions) exists in storage: no catalog URL
  points at a missing object;
- every processed artwork has all its sizes recorded in the current format.

A run covers up to 128 partitions; each check records one evaluation per partition
(`partition_evaluations`), so the check's Partitions tab shows which partitions passed and which
failed, not one verdict for the whole range.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping

import dagster as dg
from dagster._core.events import DagsterEvent
from sqlalchemy import case, func, select

from tvdb_images.catalog import work
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.check_results import CheckOutcome, partition_evaluations
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ObjectStorageResource
from tvdb_images.pipeline.settings import MIRROR_SIGNATURE
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SIZES, covering_prefixes

EXAMPLES_PER_PARTITION = 10


def _examples(items: list[str]) -> dg.MetadataValue:
    shown = [f"- `{item}`" for item in items[:EXAMPLES_PER_PARTITION]]
    if len(items) > EXAMPLES_PER_PARTITION:
        shown.append(f"- ... and {len(items) - EXAMPLES_PER_PARTITION} more")
    return dg.MetadataValue.md("\n".join(shown) or "none")


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every object the catalog references in the partition exists in object storage.",
)
def catalog_objects_exist(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, storage: ObjectStorageResource
) -> Iterator[DagsterEvent | dg.Output]:
    store = storage.get_store()
    partitions = run_partitions(context)
    shards_by_type: dict[str, list[str]] = defaultdict(list)
    referenced: dict[tuple[str, str], dict[Bucket, set[str]]] = {}
    with catalog.get_catalog().session() as session:
        for content_type, shard in partitions:
            shards_by_type[content_type].append(shard)
            originals, thumbnails = work.referenced_keys(session, content_type, shard)
            referenced[(content_type, shard)] = {Bucket.ORIGINALS: originals, Bucket.THUMBNAILS: thumbnails}
    # One listing per covering prefix (8 for a 128-partition run) rather than per partition.
    prefixes = [p for ct, shards in shards_by_type.items() for p in covering_prefixes(ct, shards)]
    present: dict[Bucket, set[str]] = {}
    for bucket in Bucket:
        if any(keys[bucket] for keys in referenced.values()):
            present[bucket] = {obj.key for prefix in prefixes for obj in store.list(bucket, prefix)}
    outcomes: dict[tuple[str, str], CheckOutcome] = {}
    for partition, keys in referenced.items():
        missing = [
            f"{bucket.value}/{key}"
            for bucket, wanted in keys.items()
            for key in sorted(wanted - present.get(bucket, set()))
        ]
        checked = sum(len(wanted) for wanted in keys.values())
        outcomes[partition] = CheckOutcome(
            passed=not missing,
            description=f"{len(missing)} of {checked} referenced objects missing" if missing else None,
            metadata={
                "objects_checked": dg.MetadataValue.int(checked),
                "missing": dg.MetadataValue.int(len(missing)),
                "missing_examples": _examples(missing),
            },
        )
    yield from partition_evaluations(context, outcomes)


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every processed artwork in the partition has all sizes recorded from its latest render.",
)
def processed_artwork_complete(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> Iterator[DagsterEvent | dg.Output]:
    partitions = run_partitions(context)
    scope = work.Scope(partitions=partitions)
    # Renditions from the artwork's own latest render: all five sizes, or the one mirrored source.
    size_count = (
        select(func.count())
        .where(
            ArtworkRendition.artwork_id == Artwork.id,
            ArtworkRendition.render_signature == Artwork.render_signature,
        )
        .scalar_subquery()
    )
    expected = case((Artwork.render_signature == MIRROR_SIGNATURE, 1), else_=len(SIZES))
    processed_in_scope = (scope.clause(), Artwork.status == ArtworkStatus.PROCESSED.value)
    with catalog.get_catalog().session() as session:
        processed: Mapping[tuple[str, str], int] = {
            (content_type, shard): count
            for content_type, shard, count in session.execute(
                select(Artwork.content_type, Artwork.shard, func.count())
                .where(*processed_in_scope)
                .group_by(Artwork.content_type, Artwork.shard)
            )
        }
        incomplete: dict[tuple[str, str], list[str]] = defaultdict(list)
        for content_type, shard, artwork_id in session.execute(
            select(Artwork.content_type, Artwork.shard, Artwork.id)
            .where(*processed_in_scope, size_count < expected)
            .order_by(Artwork.id)
        ):
            incomplete[(content_type, shard)].append(str(artwork_id))
    outcomes = {
        partition: CheckOutcome(
            passed=not incomplete[partition],
            description=(
                f"{len(incomplete[partition])} processed artworks lack sizes"
                if incomplete[partition]
                else None
            ),
            metadata={
                "processed": dg.MetadataValue.int(processed.get(partition, 0)),
                "incomplete": dg.MetadataValue.int(len(incomplete[partition])),
                "incomplete_examples": _examples(incomplete[partition]),
            },
        )
        for partition in partitions
    }
    yield from partition_evaluations(context, outcomes)


ARTWORK_CHECKS = [catalog_objects_exist, processed_artwork_complete]
