"""`artwork_views_daily` materialized in process for one day from counts in a real PostgreSQL catalog,
its check passing on complete counts and failing on bad or incomplete ones, and its schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkViewCount
from tvdb_images.catalog.views import ViewBatch, day_end, flush_views
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.resources import CatalogResource
from tvdb_images.defs.views import (
    artwork_views_complete,
    artwork_views_daily,
    artwork_views_schedule,
)

DAY = date(2026, 11, 30)
KEY = DAY.isoformat()
DURING = datetime(2026, 11, 30, 15, tzinfo=UTC)


@pytest.fixture
def counted(postgres_catalog: Catalog) -> Catalog:
    """Two workers' views of the day: one stopped cleanly, one flushed past midnight."""
    with postgres_catalog.session() as session:
        for artwork_id, content_type in ((7001, "series"), (7002, "movies"), (7003, "series")):
            session.add(
                Artwork(
                    id=artwork_id,
                    content_type=content_type,
                    content_id=artwork_id - 7000,
                    image_type="poster",
                    source_url=f"https://artworks.thetvdb.com/{artwork_id}.jpg",
                )
            )
    with postgres_catalog.session() as session:
        batch = ViewBatch({(DAY, 7001, "small"): 30, (DAY, 7002, "medium"): 12}, {}, DURING)
        flush_views(session, "worker-a", batch, set(), stopped=True)
        still_open = flush_views(session, "worker-b", ViewBatch({(DAY, 7001, "large"): 5}, {}, DURING), set())
        flush_views(session, "worker-b", ViewBatch({}, {}, day_end(DAY) + timedelta(seconds=4)), still_open)
    return postgres_catalog


def _run(catalog: Catalog, instance: dg.DagsterInstance, **kw: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [artwork_views_daily, artwork_views_complete],
        partition_key=KEY,
        resources={
            "catalog": CatalogResource(settings=Settings.model_validate({"DATABASE_URL": catalog.url}))
        },
        instance=instance,
        raise_on_error=True,
        **kw,
    )


def test_the_day_materializes_with_plottable_numbers_and_a_top_table(counted: Catalog) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(counted, instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("artwork_views_daily")
    assert materialization.partition == KEY
    metadata = materialization.metadata
    assert metadata["views"] == dg.IntMetadataValue(47)
    assert metadata["artworks"] == dg.IntMetadataValue(2)
    assert metadata["views_small"] == dg.IntMetadataValue(30)
    assert metadata["views_large"] == dg.IntMetadataValue(5)
    assert metadata["views_thumbnail"] == dg.IntMetadataValue(0)
    assert metadata["top_views_share"] == dg.FloatMetadataValue(1.0)
    table = metadata["top_artwork"].value
    assert isinstance(metadata["top_artwork"], dg.MarkdownMetadataValue)
    assert "| 1 | 7001 | series 1 | poster | 35 | large 5, small 30 |" in table
    assert "| 2 | 7002 | movies 2 | poster | 12 | medium 12 |" in table
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    assert evaluation.partition == KEY
    assert evaluation.metadata["workers"] == dg.IntMetadataValue(2)


def test_a_killed_worker_leaves_the_day_incomplete_as_a_warning(counted: Catalog) -> None:
    with counted.session() as session:  # flushed during the day, then never again: it was killed
        flush_views(session, "worker-killed", ViewBatch({(DAY, 7003, "small"): 2}, {}, DURING), set())
    with dg.DagsterInstance.ephemeral() as instance:
        (evaluation,) = _run(counted, instance).get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "worker worker-killed last flushed at 2026-11-30T15:00:00+00:00" in (evaluation.description or "")
    assert evaluation.metadata["workers_pending"] == dg.IntMetadataValue(1)


def test_negative_or_unaccounted_counts_fail_the_check_as_an_error(counted: Catalog) -> None:
    with counted.session() as session:
        session.add(ArtworkViewCount(day=DAY, artwork_id=7003, size="small", count=-3))
    with dg.DagsterInstance.ephemeral() as instance:
        (evaluation,) = _run(counted, instance).get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "1 rows of artwork_views have a negative count" in (evaluation.description or "")
    assert "the workers flushed 47 views but artwork_views holds 44" in (evaluation.description or "")


def test_the_schedule_materializes_yesterday_after_midnight_utc() -> None:
    tick = datetime(2026, 12, 2, 0, 10, tzinfo=UTC)
    repository = build_definitions(Settings()).get_repository_def()
    schedule = repository.get_schedule_def(artwork_views_schedule.name)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repository) as context:
        (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-12-01"
    assert schedule.job_name == "artwork_views_daily_job"
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("10 0 * * *", "UTC")
