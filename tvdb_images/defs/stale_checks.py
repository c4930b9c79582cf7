"""The `no_stale_images` check: artwork served as its last good image because its source changed and
was refused (STALE_IMAGE_POLICY=serve), counted per partition so an operator sees what needs deciding."""

import dagster as dg

from tvdb_images.catalog import stale
from tvdb_images.catalog.work import Scope
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource


@dg.asset_check(
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="No artwork is served from an image whose source has since changed or turned bad (stale).",
)
def no_stale_images(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    scope = Scope(partitions=run_partitions(context))
    with catalog.get_catalog().session() as session:
        count = stale.count_stale(session, scope)
        examples = stale.list_stale(session, scope, limit=20)
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "stale": dg.MetadataValue.int(count),
            "stale_examples": dg.MetadataValue.json(
                [
                    {
                        "artwork_id": a.artwork_id,
                        "item": f"{a.content_type}/{a.content_id}",
                        "status": a.status,
                        "failure_cause": a.failure_cause,
                        "stale_since": a.stale_since.isoformat(),
                        "source_url": a.source_url,
                    }
                    for a in examples
                ]
            ),
        },
    )


STALE_CHECKS = [no_stale_images]
