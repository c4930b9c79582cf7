"""The `no_stale_images` check: artwork served as its last good image because its source changed and
was refused (STALE_IMAGE_POLICY=serve), counted per partition so an operator sees what needs deciding."""

from collections.abc import Iterator

import dagster as dg
from dagster._core.events import DagsterEvent

from tvdb_images.catalog import stale
from tvdb_images.catalog.scope import Scope
from tvdb_images.defs.assets import image_renditions
from tvdb_images.defs.check_results import CheckOutcome, partition_evaluations
from tvdb_images.defs.partitions import artwork_partitions, run_partitions
from tvdb_images.defs.resources import CatalogResource

EXAMPLES = 10


@dg.asset_check(  # type: ignore[arg-type]  # dagster types a check as returning one result; partitioned ones yield
    asset=image_renditions,
    partitions_def=artwork_partitions,
    description="No artwork is served from an image whose source has since changed or turned bad (stale).",
)
def no_stale_images(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> Iterator[DagsterEvent | dg.Output]:
    partitions = run_partitions(context)
    with catalog.get_catalog().session() as session:
        counts = stale.count_stale_by_partition(session, Scope(partitions=partitions))
        examples = {
            partition: stale.list_stale(session, Scope(partitions=(partition,)), limit=EXAMPLES)
            for partition in counts
        }
    outcomes = {
        partition: CheckOutcome(
            passed=not counts.get(partition),
            description=f"{counts[partition]} artworks served stale" if counts.get(partition) else None,
            metadata={
                "stale": dg.MetadataValue.int(counts.get(partition, 0)),
                "stale_examples": dg.MetadataValue.md(
                    "\n".join(
                        f"- artwork {a.artwork_id} of `{a.content_type}/{a.content_id}`: {a.status}"
                        f" ({a.failure_cause}) since {a.stale_since.isoformat()}, source {a.source_url}"
                        for a in examples.get(partition, [])
                    )
                    or "none"
                ),
            },
        )
        for partition in partitions
    }
    yield from partition_evaluations(context, outcomes, severity=dg.AssetCheckSeverity.WARN)


STALE_CHECKS = [no_stale_images]
