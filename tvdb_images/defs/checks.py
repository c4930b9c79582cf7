"""Asset checks that hold the catalog and storage to each other, per partition.

- every object the catalog references (sources and renditions) exists in storage: no catalog URL
  points at a missing object;
- every processed artwork has all its sizes recorded in the current format.
"""

import dagster as dg
from sqlalchemy import case, func, select

from tvdb_images.catalog import work
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource, ObjectStorageResource
from tvdb_images.pipeline.repair import find_missing
from tvdb_images.pipeline.settings import MIRROR_SIGNATURE
from tvdb_images.storage.layout import SIZES


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="Every object the catalog references in these partitions exists in object storage.",
)
def catalog_objects_exist(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, storage: ObjectStorageResource
) -> dg.AssetCheckResult:
    # The same comparison the next sync's discovery makes (one listing per covering prefix, 8 for a
    # 128-partition run): what fails here, that sync stores again.
    found = find_missing(
        catalog.get_catalog(), storage.get_store(), work.Scope(partitions=run_partitions(context))
    )
    missing = found.keys
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not missing
        else "objects the catalog references are gone from storage; the next sync_images run of "
        "these partitions (or a sync of the content item) stores them again",
        metadata={
            "objects_checked": dg.MetadataValue.int(found.referenced),
            "missing": dg.MetadataValue.int(len(missing)),
            "missing_examples": dg.MetadataValue.json(missing[:20]),
            "listing_seconds": dg.MetadataValue.float(round(found.seconds, 3)),
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
