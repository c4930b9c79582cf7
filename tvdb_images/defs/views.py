"""View analytics for analysts: `artwork_views_daily`, one partition per UTC day, materialized from
the views the serving API flushed to the catalog, its check, and a schedule for yesterday.

The asset's metadata has the day's numbers (Dagster plots them across partitions) and the top list
as a Markdown table. The check passes when the day's counts are non-negative and complete (defined in
tvdb_images.catalog.view_stats: the day is over and every worker's counts for it have landed).
"""

from datetime import date

import dagster as dg

from tvdb_images.catalog.view_stats import DayTotals, PopularArtwork, day_completeness, day_totals
from tvdb_images.defs.kinds import CATALOG_KIND
from tvdb_images.defs.resources import CatalogResource
from tvdb_images.storage.layout import SIZES

ANALYTICS_GROUP = "analytics"
TOP = 20

view_days = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


@dg.asset(
    name="artwork_views_daily",
    partitions_def=view_days,
    group_name=ANALYTICS_GROUP,
    kinds={CATALOG_KIND},
    description="Views of the day (UTC) from the serving API's counts: totals by size and content type, "
    f"and the {TOP} most viewed artworks.",
)
def artwork_views_daily(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    with catalog.get_catalog().session() as session:
        totals = day_totals(session, day, top=TOP)
    context.log.info("%s: %d views of %d artworks", day, totals.views, totals.artworks)
    return dg.MaterializeResult(metadata=totals_metadata(totals))


def totals_metadata(totals: DayTotals) -> dict[str, dg.MetadataValue]:
    top_views = sum(item.views for item in totals.top)
    metadata: dict[str, dg.MetadataValue] = {
        "views": dg.MetadataValue.int(totals.views),
        "artworks": dg.MetadataValue.int(totals.artworks),
        "top_views_share": dg.MetadataValue.float(
            round(top_views / totals.views, 4) if totals.views else 0.0
        ),
        "top_artwork": dg.MetadataValue.md(_top_table(totals.top)),
        "views_by_content_type": dg.MetadataValue.md(_count_table("content type", totals.by_content_type)),
    }
    for size in SIZES:  # every size, zero included, so each plots as one continuous line
        metadata[f"views_{size}"] = dg.MetadataValue.int(totals.by_size.get(size, 0))
    return metadata


def _top_table(top: list[PopularArtwork]) -> str:
    if not top:
        return "No views counted on this day."
    lines = ["| # | artwork | content | image type | views | by size |", "|---:|---:|---|---|---:|---|"]
    for rank, item in enumerate(top, 1):
        sizes = ", ".join(f"{size} {count}" for size, count in item.by_size.items())
        lines.append(
            f"| {rank} | {item.artwork_id} | {item.content_type} {item.content_id} | {item.image_type} "
            f"| {item.views} | {sizes} |"
        )
    return "\n".join(lines)


def _count_table(label: str, counts: dict[str, int]) -> str:
    if not counts:
        return "No views counted on this day."
    rows = [f"| {label} | views |", "|---|---:|"] + [f"| {key} | {value} |" for key, value in counts.items()]
    return "\n".join(rows)


@dg.asset_check(
    asset=artwork_views_daily,
    partitions_def=view_days,
    description="The day's counts are non-negative and complete: the day is over, every serving worker "
    "that counted on it flushed past its end or stopped cleanly, and the flushed totals match the table.",
)
def artwork_views_complete(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource
) -> dg.AssetCheckResult:
    day = date.fromisoformat(context.partition_key)
    with catalog.get_catalog().session() as session:
        totals = day_totals(session, day, top=0)
        completeness = day_completeness(session, day)
    errors = completeness.inconsistencies()  # bad data: an error; incomplete counts: a warning
    if totals.negative_rows:
        errors.insert(0, f"{totals.negative_rows} rows of artwork_views have a negative count")
    found = errors + completeness.problems()
    return dg.AssetCheckResult(
        passed=not found,
        severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
        description="; ".join(found) if found else None,
        metadata={
            "views": dg.MetadataValue.int(totals.views),
            "negative_rows": dg.MetadataValue.int(totals.negative_rows),
            "workers": dg.MetadataValue.int(len(completeness.workers)),
            "workers_pending": dg.MetadataValue.int(len(completeness.pending)),
            "dropped_views": dg.MetadataValue.int(completeness.dropped),
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in found) or "none"),
        },
    )


artwork_views_job = dg.define_asset_job(
    "artwork_views_daily_job",
    selection=dg.AssetSelection.assets(artwork_views_daily)
    | dg.AssetSelection.checks_for_assets(artwork_views_daily),
    description="Materialize one day's view totals and check them.",
)

# Yesterday's partition, ten minutes after midnight UTC: every worker flushes at least every
# VIEW_FLUSH_SECONDS, so by then each running one has flushed past the day's end.
artwork_views_schedule = dg.build_schedule_from_partitioned_job(
    artwork_views_job, hour_of_day=0, minute_of_hour=10, name="artwork_views_daily_schedule"
)

VIEW_ASSETS = [artwork_views_daily]
VIEW_CHECKS = [artwork_views_complete]
VIEW_JOBS = [artwork_views_job]
VIEW_SCHEDULES = [artwork_views_schedule]
