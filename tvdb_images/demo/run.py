"""Run the demo: catalog, local origin, a full sync through Dagster, and a summary of what happened."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from sqlalchemy import func, select

from tvdb_images.catalog import migrate, queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_file
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.config import Settings, load_settings
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.demo.catalog import DemoCatalog, draw_stand_ins, find_corpus, write_demo_catalog
from tvdb_images.demo.home import dagster_ui_command, prepare_dagster_home, serve_command
from tvdb_images.demo.origin import serve_origin
from tvdb_images.demo.progress import SyncCounts, SyncProgress, artworks_to_sync, counts_since
from tvdb_images.partition_keys import range_tags
from tvdb_images.storage.layout import SHARDS, SIZES
from tvdb_images.wording import plural

# The full event log is in the Dagster UI; the terminal shows only warnings and the summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DemoResult:
    seconds: float
    runs: list[tuple[str, bool]]
    status_counts: dict[str, int]
    failures: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)  # cause, detail
    bytes_sources: int = 0
    bytes_renditions: int = 0
    renditions: int = 0
    dagster_home: str = ""
    settings: Settings | None = None
    example: dict[str, str] = field(default_factory=dict)
    # Artworks whose last attempt failed on infrastructure (timeouts, 5xx, storage): later syncs retry
    # them while they have attempts left.
    infrastructure_failures: int = 0
    refused: int = 0
    pending: int = 0
    synced: SyncCounts = field(default_factory=lambda: SyncCounts(0, 0, 0))
    origin_requests: int = 0
    ui_command: str = ""
    serve_command: str = ""

    @property
    def ok(self) -> bool:
        return all(success for _, success in self.runs)


def run_demo(
    *,
    origin_port: int | None = None,
    say: Callable[[str], None] = print,
    write_catalog: Callable[[Path, str], DemoCatalog] = write_demo_catalog,
) -> DemoResult:
    """Import the demo catalog (`write_catalog(path, origin_url)`), serve its images, sync it."""
    from tvdb_images.definitions import build_definitions

    started = time.perf_counter()
    base_settings = load_settings()
    data_dir = base_settings.data_dir.resolve()
    with contextlib.ExitStack() as cleanup:
        corpus = find_corpus()
        if corpus is None:
            # The demo's own artwork, written from the photographs in the package; removed when the demo
            # ends, whatever happens.
            scratch = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="tvdb-images-demo-origin-"))
            corpus = draw_stand_ins(Path(scratch))
        origin = cleanup.enter_context(serve_origin(corpus, data_dir, requested_port=origin_port, say=say))
        host = origin.url.removeprefix("http://")
        # The demo's own origin is allowed explicitly, for this run only.
        settings = load_settings(ALLOWED_SOURCE_HOSTS=",".join([*base_settings.allowed_source_hosts, host]))
        say(f"artwork origin: {origin.url} (serving {corpus})")
        database_url = settings.resolved_database_url
        migrate.upgrade(database_url)
        catalog = Catalog(database_url)
        cleanup.callback(catalog.dispose)
        demo = write_catalog(data_dir / "demo-catalog.jsonl", origin.url)
        report = import_catalog_file(catalog, demo.path)
        say(
            f"catalog: {catalog.engine.url.render_as_string(hide_password=True)}; imported {report.summary()}"
        )

        home = prepare_dagster_home(settings, say=say)
        defs = build_definitions(settings)
        runs: list[tuple[str, bool]] = []
        sync_started = datetime.now(UTC)
        with dg.DagsterInstance.get() as instance:
            pipeline = defs.resolve_job_def("sync_images")
            with catalog.session() as session:
                partitions = queue.partitions_with_work(session, max_attempts=settings.artwork_max_attempts)
            # In-process runs on a SQLite instance cost ~0.4 s each and ~45 ms per partition they span:
            # group nearby partitions with work, and skip long stretches without any.
            ranges = partition_ranges(partitions, chunk=len(SHARDS), max_gap=8)
            to_sync = artworks_to_sync(catalog, max_attempts=settings.artwork_max_attempts)
            say(
                f"syncing {plural(to_sync, 'artwork')} in {plural(len(partitions), 'partition')} "
                f"with work: {plural(len(ranges), 'Dagster run')} of sync_images"
            )
            progress = SyncProgress(catalog, since=sync_started, runs=len(ranges), artworks=to_sync)
            with progress:
                for start, end in ranges:
                    run = pipeline.execute_in_process(
                        instance=instance,
                        tags=range_tags(start, end),
                        run_config=QUIET_CONSOLE,
                        raise_on_error=False,
                    )
                    runs.append((run.run_id, run.success))
                    progress.run_finished(run.success)
            stats = defs.resolve_job_def("refresh_storage_stats").execute_in_process(
                instance=instance, run_config=QUIET_CONSOLE, raise_on_error=False
            )
            runs.append((stats.run_id, stats.success))
        result = _summarize(catalog, settings, runs, time.perf_counter() - started)
        result.synced = counts_since(catalog, sync_started)
        result.origin_requests = origin.requests
    result.dagster_home = str(home)
    result.ui_command = dagster_ui_command(settings, home)
    result.serve_command = serve_command(settings)
    return result


def _summarize(
    catalog: Catalog, settings: Settings, runs: list[tuple[str, bool]], seconds: float
) -> DemoResult:
    with catalog.session() as session:
        status_counts = dict(
            session.execute(select(Artwork.status, func.count()).group_by(Artwork.status)).all()
        )
        failed_rows = session.execute(
            select(Artwork).where(Artwork.status.in_([ArtworkStatus.FAILED.value, ArtworkStatus.GONE.value]))
        ).scalars()
        failures = []
        infrastructure = 0
        for row in failed_rows:
            retryable = row.status == ArtworkStatus.FAILED.value and row.failure_retryable
            infrastructure += int(retryable)
            cause = (
                f"{row.failure_cause} (infrastructure, retried by later syncs)"
                if retryable
                else row.failure_cause
            )
            failures.append(
                (row.id, f"{row.content_type}/{row.content_id} {row.image_type}", cause, row.failure_detail)
            )
        bytes_sources = session.scalar(
            select(func.coalesce(func.sum(Artwork.file_size), 0)).where(
                Artwork.status == ArtworkStatus.PROCESSED.value
            )
        )
        renditions, bytes_renditions = session.execute(
            select(func.count(), func.coalesce(func.sum(ArtworkRendition.bytes), 0))
        ).one()
        example_row = session.execute(
            select(Artwork)
            .where(Artwork.status == ArtworkStatus.PROCESSED.value, Artwork.image_type == "poster")
            .order_by(Artwork.id)
            .limit(1)
        ).scalar_one_or_none()
        example: dict[str, str] = {}
        if example_row is not None:
            example["artwork"] = (
                f"{example_row.content_type}/{example_row.content_id} poster (artwork {example_row.id})"
            )
            order = {size: index for index, size in enumerate(SIZES)}
            for rendition in sorted(example_row.renditions, key=lambda r: order.get(r.size, 99)):
                example[rendition.size] = (
                    f"{rendition.url}  ({rendition.width}x{rendition.height}, {rendition.bytes} B)"
                )
    return DemoResult(
        seconds=seconds,
        runs=runs,
        status_counts=status_counts,
        failures=failures,
        bytes_sources=int(bytes_sources or 0),
        bytes_renditions=int(bytes_renditions or 0),
        renditions=int(renditions or 0),
        settings=settings,
        example=example,
        infrastructure_failures=infrastructure,
        refused=len(failures) - infrastructure,
        pending=status_counts.get(ArtworkStatus.PENDING.value, 0)
        + status_counts.get(ArtworkStatus.DOWNLOADED.value, 0),
    )


def format_summary(result: DemoResult) -> str:
    settings = result.settings
    assert settings is not None
    processed = result.status_counts.get(ArtworkStatus.PROCESSED.value, 0)
    synced = result.synced
    lines = [
        "",
        f"tvdb-images demo finished in {result.seconds:.1f} s"
        + ("" if result.ok else "  (some Dagster runs FAILED: see the Dagster UI)"),
        f"  this run: {plural(synced.downloads, 'download')} ({plural(result.origin_requests, 'request')} "
        f"to the origin), {plural(synced.processed, 'artwork')} processed, {synced.failed} failed",
        f"  catalog: {plural(processed, 'artwork')} processed, {result.refused} refused (bad or gone "
        f"sources), {result.infrastructure_failures} failed on infrastructure (retried by later syncs), "
        f"{result.pending} pending",
    ]
    if len(result.runs) <= 1:
        lines.append(
            "  (nothing needed syncing: every artwork already had its local copy or its recorded failure)"
        )
    for artwork_id, what, cause, detail in result.failures:
        lines.append(f"    artwork {artwork_id} ({what}): {cause}: {(detail or '')[:110]}")
    if result.bytes_sources:
        ratio = result.bytes_renditions / result.bytes_sources
        lines.append(
            f"  bytes: sources {result.bytes_sources / 1e6:.2f} MB -> {result.renditions} renditions "
            f"{result.bytes_renditions / 1e6:.2f} MB ({ratio:.0%} of the sources, all five sizes together)"
        )
    if settings.storage_backend == "s3":
        lines.append(
            f"  images: S3 {settings.s3_endpoint_url or 'AWS'} buckets {settings.s3_bucket_thumbnails} "
            f"(renditions) and {settings.s3_bucket_originals} (sources)"
        )
    else:
        lines.append(
            f"  images: {settings.resolved_local_storage_dir}/"
            f"{{{settings.s3_bucket_thumbnails},{settings.s3_bucket_originals}}}"
        )
    database = settings.resolved_database_url if not settings.database_url else "DATABASE_URL"
    lines.append(f"  catalog database: {database}")
    if result.example:
        lines.append(f"  example: {result.example.pop('artwork')}")
        lines.extend(f"    {size:<9} {where}" for size, where in result.example.items())
    lines += [
        f"  Dagster runs ({len(result.runs)}) are recorded in DAGSTER_HOME={result.dagster_home}",
        "  open the Dagster UI on this data (http://127.0.0.1:3000) with:",
        f"    {result.ui_command}",
        "  and serve the images with:",
        f"    {result.serve_command}"
        + ("   (with the same DATABASE_URL and S3_* variables)" if settings.storage_backend == "s3" else ""),
    ]
    return "\n".join(lines)
