"""The `refresh_artwork` job: `tvdb-images catalog refresh` as run config, for the UI and the admin API."""

import dagster as dg

from tvdb_images.catalog import refresh as catalog_refresh
from tvdb_images.catalog.refresh import SelectionError, selection_from
from tvdb_images.defs.resources import CatalogResource


class RefreshArtworkConfig(dg.Config):
    """Ids and items add up; content_type, statuses and causes narrow. `all` selects every artwork."""

    artwork_ids: list[int] = []
    items: list[str] = []
    """CONTENT_TYPE/ID, e.g. series/81189."""
    content_type: str | None = None
    statuses: list[str] = []
    causes: list[str] = []
    all: bool = False
    dry_run: bool = False


@dg.op(out={"result": dg.Out(dg.Nothing)})
def refresh_artwork_op(
    context: dg.OpExecutionContext, config: RefreshArtworkConfig, catalog: CatalogResource
) -> None:
    """Mark the selected artwork for re-download; the catalog-change sensor (or the nightly sync) runs it."""
    try:
        selection = selection_from(
            artwork_ids=config.artwork_ids,
            items=config.items,
            content_type=config.content_type,
            statuses=config.statuses,
            causes=config.causes,
            everything=config.all,
        )
        with catalog.get_catalog().session() as session:
            report = catalog_refresh.refresh_artwork(session, selection, dry_run=config.dry_run)
    except SelectionError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(report.summary())
    context.add_output_metadata(
        {
            "dry_run": dg.MetadataValue.bool(report.dry_run),
            "matched": dg.MetadataValue.int(report.matched),
            ("would_mark" if report.dry_run else "marked"): dg.MetadataValue.int(
                report.would_mark if report.dry_run else report.marked
            ),
            "already_pending": dg.MetadataValue.int(report.already_pending),
            "by_status": dg.MetadataValue.json(report.by_status),
            "examples": dg.MetadataValue.json(report.examples),
        },
        output_name="result",
    )


@dg.job(
    description=(
        "Mark artwork for re-download by the next sync (run config: artwork_ids, items, content_type,"
        " statuses, causes, all, dry_run)."
    )
)
def refresh_artwork() -> None:
    refresh_artwork_op()
