"""What the Dagster UI shows is what happened, read off the pages by Chromium (Playwright) and checked
against Dagster's own records (instance queries, backfill status).

One real `dagster-webserver` and `dagster-daemon` on the repository's workspace.yaml and dagster.yaml
(SQLite storage under a temporary DAGSTER_HOME), a small catalog of generated images. The screenshots
go to docs/images/ (or TVDB_IMAGES_SCREENSHOT_DIR) for docs/operations.md.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from serving.dagster_client import DagsterClient
from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN
from tvdb_images.partition_keys import PARTITION_NAME_TAG, RANGE_END_TAG, RANGE_START_TAG
from tvdb_images.storage.layout import SHARDS, shard_of
from tvdb_images_tests.support.browser import chromium
from tvdb_images_tests.support.dagster_api import DagsterAPI
from tvdb_images_tests.support.dagster_ui import REPOSITORY, DagsterDeployment, dagster_deployment
from tvdb_images_tests.support.origins import LoopbackOrigin, OriginHandler, serve_file
from tvdb_images_tests.support.small_catalog import Item, import_items, make_items, write_images
from tvdb_images_tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

QUIET_CHROMIUM = [  # no update checks, sync or first-run pages: only the pages under test load
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SYNC_ASSETS = ["missing_artwork", "source_images", "image_renditions"]
SCREENSHOTS = Path(os.environ.get("TVDB_IMAGES_SCREENSHOT_DIR") or REPOSITORY / "docs" / "images")
PAGE_TIMEOUT_MS = 120_000  # the webserver answers slowly on a busy 2-core machine


def _series_in_each_half() -> tuple[Item, Item]:
    """Two series, one in the first 128 shards and one in the last: a backfill of all 256 series
    partitions syncs both ends of its range run."""
    found: dict[bool, Item] = {}
    content_id = 300
    while len(found) < 2:
        upper = SHARDS.index(shard_of("series", content_id)) >= 128
        found.setdefault(upper, Item("series", content_id, 6000 + content_id))
        content_id += 1
    return found[False], found[True]


PEOPLE = make_items("people", 3)
SERIES_FIRST, SERIES_GATED = _series_in_each_half()


@dataclass
class UiStack:
    deployment: DagsterDeployment
    catalog: Catalog
    gate: threading.Event
    storage_dir: Path

    @property
    def api(self) -> DagsterAPI:
        return self.deployment.api


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    tmp = tmp_path_factory.mktemp("dagster_ui")
    items = [*PEOPLE, SERIES_FIRST, SERIES_GATED]
    write_images(tmp / "origin", items)
    gate = threading.Event()

    def gated(handler: OriginHandler) -> None:
        gate.wait(timeout=600)  # the test opens it once it has seen the backfill's progress
        serve_file(handler)

    with LoopbackOrigin(tmp / "origin") as origin:
        origin.route(SERIES_GATED.path, gated)
        url = f"sqlite:///{tmp / 'catalog.db'}"
        migrate.upgrade(url)
        catalog = Catalog(url)
        import_items(catalog, items, origin.url("").rstrip("/"))
        env = {
            **os.environ,
            "TVDB_IMAGES_DATA_DIR": str(tmp / "data"),
            "DATABASE_URL": url,
            "LOCAL_STORAGE_DIR": str(tmp / "storage"),
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "FETCH_MAX_RETRIES": "0",
            "FETCH_READ_TIMEOUT_SECONDS": "900",
            "FETCH_TOTAL_TIMEOUT_SECONDS": "900",
            "RENDER_WORKERS": "1",
        }
        try:
            with dagster_deployment(tmp, env) as deployment:
                yield UiStack(deployment, catalog, gate, tmp / "storage")
        finally:
            gate.set()
            catalog.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(*QUIET_CHROMIUM) as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    context.close()


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _latest_backfill_id(api: DagsterAPI) -> str:
    data = api.query(
        "{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id } } } }"
    )
    return data["partitionBackfillsOrError"]["results"][0]["id"]


def _counts_row(page, row_text: str) -> list[int]:
    """The numbers in the backfill page's table row naming `row_text` (targeted, in progress, ...)."""
    # A job backfill's table is a <table>; an asset backfill's a virtualized grid of positioned rows.
    row = page.locator("tr, div[style*='translateY']").filter(has_text=row_text).first
    text = row.inner_text()
    return [int(n.replace(",", "")) for n in re.findall(r"(?<![\w.%])\d[\d,]*(?![\w.%])", text)]


def _status_count(page, status: str) -> int:
    """The count beside a status filter of a Partitions tab, e.g. "Passed (255)"."""
    match = re.search(rf"\b{status} \((\d[\d,]*)\)", page.locator("body").inner_text())
    assert match, f"no {status} count on {page.url}"
    return int(match.group(1).replace(",", ""))


def _partition_page(page, stack: UiStack, asset: str, partition: str) -> str:
    """The asset's Partitions tab with one partition selected; returns the detail pane's text."""
    selected = partition.replace("|", "%7C")
    page.goto(f"{stack.deployment.url}/assets/{asset}?view=partitions&partition={selected}")
    page.get_by_text("Latest materialization").first.wait_for()
    page.get_by_text("View all historical events").first.wait_for()
    page.wait_for_timeout(1000)  # the metadata table renders after the heading
    text = page.locator("body").inner_text()
    assert partition in text, text[-2000:]
    return text


def test_job_page_backfill_records_every_partition_it_runs(ui_stack: UiStack, page) -> None:
    """Jobs -> sync_images -> "Materialize all..." over the 256 `people` partitions: a job backfill of
    one range run recording all 256 partitions it synced (Dagster 1.13.27 used to tag every range run
    with the first partition and record only that one)."""
    stack = ui_stack
    page.goto(f"{stack.deployment.url}/locations/tvdb_images/jobs/sync_images")
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog").first
    dialog.get_by_text("content_type", exact=True).wait_for()
    dialog.get_by_text("Select a partition or create one").first.click()
    page.get_by_role("dialog").last.get_by_text("people", exact=True).first.click()
    dialog.get_by_text("Launch runs to materialize 3 assets").click()  # closes the list
    dialog.get_by_role("button", name="All").nth(1).click()  # every shard
    dialog.get_by_text("256 partitions", exact=True).wait_for()
    _screenshot(page, "job-backfill-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    page.get_by_text("Created backfill").first.wait_for()
    backfill_id = _latest_backfill_id(stack.api)

    backfill = stack.api.wait_for_backfill(backfill_id, timeout=900)
    assert backfill.status == "COMPLETED_SUCCESS", stack.deployment.logs()
    # Dagster's records: one range run, no single-partition tags, all 256 partitions of each asset.
    ranges = sorted((run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) for run in backfill.runs)
    assert ranges == [("people|00", "people|ff")]
    for run in backfill.runs:
        assert run.status == "SUCCESS"
        assert not any(tag.startswith(f"{PARTITION_NAME_TAG}/") for tag in run.tags), run.tags
        assert PARTITION_NAME_TAG not in run.tags
    people = {f"people|{shard}" for shard in SHARDS}
    instance = stack.deployment.instance()
    for asset in SYNC_ASSETS:
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == people, asset
    (run_id,) = (run.run_id for run in backfill.runs)
    with stack.catalog.session() as session:
        statuses = {
            row.id: row.status
            for row in session.scalars(select(Artwork).where(Artwork.content_type == "people"))
        }
    assert statuses == {item.artwork_id: ArtworkStatus.PROCESSED for item in PEOPLE}

    # The same facts off the pages: the backfill's status and counts, each partition's materialization.
    page.goto(f"{stack.deployment.url}/runs/b/{backfill_id}")
    page.get_by_text("100% completed").wait_for()
    assert _counts_row(page, "sync_images") == [256, 0, 256, 0]  # targeted, in progress, succeeded, failed
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    _screenshot(page, "job-backfill-succeeded")

    item = PEOPLE[0]
    detail = _partition_page(page, stack, "image_renditions", item.partition)
    assert "Materialized (256)" in detail
    assert run_id[:8] in detail, detail[-2000:]
    # This partition's own numbers: its one artwork, not the run's totals over 256 partitions.
    assert "render: 1 processed" in detail, detail[-3000:]
    _screenshot(page, "partition-materialized")
    # A partition with no artwork was synced (and recorded) by the same run; another content type not.
    empty = next(f"people|{s}" for s in SHARDS[128:] if f"people|{s}" not in {i.partition for i in PEOPLE})
    empty_detail = _partition_page(page, stack, "image_renditions", empty)
    assert run_id[:8] in empty_detail
    assert "render: nothing to do" in empty_detail, empty_detail[-3000:]
    assert f"series|{SHARDS[0]}" not in instance.get_materialized_partitions(dg.AssetKey("image_renditions"))


def test_backfill_progress_shows_while_its_runs_finish(ui_stack: UiStack, page) -> None:
    """An asset backfill (the Lineage page's) of the 512 `people` and `series` partitions, two runs of
    256: while the second (series) is still downloading (its origin is held), the page already counts
    the first run's 256."""
    stack = ui_stack
    launched = time.monotonic()
    requested = [f"{content_type}|{s}" for content_type in ("people", "series") for s in SHARDS]
    backfill_id = stack.api.launch_asset_backfill(SYNC_ASSETS, requested)

    def first_run_counted() -> dict[str, dict[str, int]] | None:
        progress = stack.api.backfill_progress(backfill_id)
        done = progress.get("image_renditions", {}).get("materialized", 0)
        return progress if done >= MAX_PARTITIONS_PER_RUN else None

    progress = wait_until(first_run_counted, 600, 2, "the first run's 256 partitions were not counted")
    first_counted = time.monotonic() - launched
    backfill = stack.api.backfill(backfill_id)
    assert progress["image_renditions"] == {
        "targeted": 512,
        "in_progress": 256,
        "materialized": 256,
        "failed": 0,
    }
    assert backfill.status == "REQUESTED"
    # The first range's partitions count once its image_renditions step is done (the run may still
    # be running its checks); the second range is still downloading.
    status_by_range = {run.tags[RANGE_START_TAG]: run.status for run in backfill.runs}
    assert status_by_range["series|00"] == "STARTED"
    assert status_by_range["people|00"] in ("STARTED", "SUCCESS")

    page.goto(f"{stack.deployment.url}/runs/b/{backfill_id}")
    page.get_by_text("In progress", exact=True).first.wait_for()
    counts = _counts_row(page, "image_renditions")
    assert counts[:4] == [512, 256, 256, 0], counts  # targeted, in progress, succeeded, failed
    _screenshot(page, "asset-backfill-in-progress")

    stack.gate.set()
    done = stack.api.wait_for_backfill(backfill_id, timeout=600)
    assert done.status == "COMPLETED_SUCCESS", stack.deployment.logs()
    materialized = stack.deployment.instance().get_materialized_partitions(dg.AssetKey("image_renditions"))
    assert {f"series|{s}" for s in SHARDS} <= materialized
    page.reload()
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    assert _counts_row(page, "image_renditions")[:4] == [512, 0, 512, 0]
    print(f"first partitions counted {first_counted:.0f}s after launch")


def test_checks_pass_or_fail_per_partition_on_the_checks_page(ui_stack: UiStack, page) -> None:
    """After the job backfill, `catalog_objects_exist` passed for each of the 256 `people` partitions;
    one object of one person goes missing and a run of the checks over that partition alone (launched
    as the admin API launches runs) fails the check there, and only there."""
    stack = ui_stack
    item = PEOPLE[0]
    check_url = f"{stack.deployment.url}/assets/image_renditions?view=checks"
    page.goto(check_url)
    page.get_by_text("Execution history").first.wait_for()
    page.get_by_text("Partitions", exact=True).last.click()
    page.get_by_text("Passed (").first.wait_for()
    passed_before = _status_count(page, "Passed")
    assert passed_before >= 256 and _status_count(page, "Failed") == 0

    with stack.catalog.session() as session:
        prefix = session.get(Artwork, item.artwork_id).storage_path
    lost = next(p for p in stack.storage_dir.rglob("small.webp") if f"/{prefix}/" in p.as_posix())
    lost.unlink()
    client = DagsterClient(f"{stack.deployment.url}/graphql", launch_timeout=300)
    # rerender_images runs the checks without a sync's discovery, which would store the object again.
    run = client.launch_run(
        "rerender_images", {}, {RANGE_START_TAG: item.partition, RANGE_END_TAG: item.partition}
    )
    wait_until(
        lambda: client.run(run.run_id).status in ("SUCCESS", "FAILURE", "CANCELED"),
        600,
        2,
        stack.deployment.logs,
    )
    client.close()

    # Dagster's records: failed for that partition, passed for the other 255.
    key = dg.AssetCheckKey(dg.AssetKey("image_renditions"), "catalog_objects_exist")
    infos = stack.deployment.instance().event_log_storage.get_asset_check_partition_info([key])
    verdicts = {info.partition_key: info.latest_execution_status.value for info in infos}
    assert verdicts[item.partition] == "FAILED"
    assert {p for p, v in verdicts.items() if v == "SUCCEEDED" and p.startswith("people|")} == {
        f"people|{s}" for s in SHARDS
    } - {item.partition}

    # The same off the check's Partitions tab, and the failed partition's detail.
    page.goto(check_url)
    page.get_by_text("Execution history").first.wait_for()
    page.get_by_text("Partitions", exact=True).last.click()
    page.get_by_text("Failed (1)", exact=True).wait_for()
    assert _status_count(page, "Passed") == passed_before - 1
    page.get_by_text("people", exact=True).first.click()
    page.get_by_text(item.partition.split("|")[1], exact=True).first.click()
    page.get_by_text("missing_examples").first.wait_for()  # the partition's evaluation metadata
    page.wait_for_timeout(1000)
    _screenshot(page, "check-partition-failed")
    detail = page.locator("body").inner_text()
    assert item.partition in detail and "Failed" in detail, detail[-2000:]
