"""Asset checks that hold the catalog and storage to each other, per partition.

- every object the catalog references (sources and renditions) exists in storage: no catalog URL
  points at a missing object;
- every processed artwork has all its sizes recorded in the current format.
"""

from collections import defaultdict

import dagster as dg
from sqlalchemy import case, func, select

from tvdb_images.catalog import work
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ObjectStorageResource
from tvdb_images.pipeline.settings import MIRROR_SIGNATURE
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import SIZES, covering_prefixes


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every object the catalog references in these partitions exists in object storage.",
)
def catalog_objects_exist(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, storage: ObjectStorageResource
) -> dg.AssetCheckResult:
    store = storage.get_store()
    shards_by_type: dict[str, list[str]] = defaultdict(list)
    referenced: dict[Bucket, set[str]] = {Bucket.ORIGINALS: set(), Bucket.THUMBNAILS: set()}
    with catalog.get_catalog().session() as session:
        for content_type, shard in run_partitions(context):
            shards_by_type[content_type].append(shard)
            originals, thumbnails = work.referenced_keys(session, content_type, shard)
            referenced[Bucket.ORIGINALS] |= originals
            referenced[Bucket.THUMBNAILS] |= thumbnails
    # One listing per covering prefix (8 for a 128-partition run) rather than per partition.
    prefixes = [p for ct, shards in shards_by_type.items() for p in covering_prefixes(ct, shards)]
    missing: list[str] = []
    for bucket, keys in referenced.items():
        if not keys:
            continue
        present = {obj.key for prefix in prefixes for obj in store.list(bucket, prefix)}
        missing.extend(f"{bucket.value}/{key}" for key in sorted(keys - present))
    checked = sum(len(keys) for keys in referenced.values())
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "objects_checked": dg.MetadataValue.int(checked),
            "missing": dg.MetadataValue.int(len(missing)),
            "missing_examples": dg.MetadataValue.json(missing[:20]),
        },
    )


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every processed artwork has all five sizes recorded from its latest render.",
)
def processed_artwork_complete(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> dg.AssetCheckResult:
    scope = work.Scope(partitions=run_partitions(context))
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
    with catalog.get_catalog().session() as session:
        processed = session.scalar(
            select(func.count()).where(scope.clause(), Artwork.status == ArtworkStatus.PROCESSED.value)
        )
        incomplete = session.scalars(
            select(Artwork.id)
            .where(scope.clause(), Artwork.status == ArtworkStatus.PROCESSED.value, size_count < expected)
            .order_by(Artwork.id)
            .limit(20)
        ).all()
    return dg.AssetCheckResult(
        passed=not incomplete,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "processed": dg.MetadataValue.int(processed or 0),
            "incomplete_examples": dg.MetadataValue.json(list(incomplete)),
        },
    )


ARTWORK_CHECKS = [catalog_objects_exist, processed_artwork_complete]
