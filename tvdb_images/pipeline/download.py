"""Stage 1: download each source that needs it, validate it, and store the unchanged bytes.

An artwork leaves this stage either `downloaded` (its source is in the originals bucket) or failed with
a cause on its row. Bad input never reaches storage: validation runs on the downloaded bytes before
anything is written, and a source identical to the one already stored is not uploaded again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tvdb_images.catalog import queue, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.queue import DownloadTask
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stale import settle_refused
from tvdb_images.fetch import FetchError, ImageFetcher, SourceValidators
from tvdb_images.imaging import ImageRejected, SourceInfo, validate_source
from tvdb_images.partition_keys import partition_name
from tvdb_images.pipeline.batching import CatalogWriter
from tvdb_images.pipeline.concurrency import bounded_map
from tvdb_images.pipeline.memory import limit_malloc_arenas
from tvdb_images.pipeline.paging import pages_by_id
from tvdb_images.pipeline.report import StageReport
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket, ObjectStore, StorageError
from tvdb_images.storage.layout import MIME_BY_EXTENSION, original_key, source_extension

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Downloaded:
    info: SourceInfo
    checksum: str
    uploaded: bool
    validators: SourceValidators = field(default_factory=SourceValidators)


@dataclass(frozen=True)
class Failed:
    cause: str
    detail: str
    retryable: bool
    gone: bool = False


def download_sources(
    catalog: Catalog,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    scope: Scope,
    *,
    limit: int | None = None,
) -> StageReport:
    report = StageReport(stage="download")
    started = time.perf_counter()
    limit_malloc_arenas()

    def run(task: DownloadTask) -> Downloaded | Failed:
        with report.working_on(partition_name(task.content_type, task.storage_path)):
            return _download_one(task, store, fetcher, settings, report)

    with CatalogWriter(catalog, report) as writer:
        tasks = _candidates(catalog, scope, settings.max_attempts, limit)
        for task, outcome in bounded_map(run, tasks, workers=settings.download_workers):
            partition = partition_name(task.content_type, task.storage_path)
            if isinstance(outcome, Downloaded):
                report.add_success(partition, unchanged=not outcome.uploaded)
                writer.add(_record_download(task, outcome))
            else:
                report.add_failure(outcome.cause, outcome.detail, partition)
                writer.add(_record_failure(task, outcome, settings.stale_image_policy))
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _candidates(
    catalog: Catalog, scope: Scope, max_attempts: int, limit: int | None
) -> Iterator[DownloadTask]:
    return pages_by_id(
        catalog,
        lambda session, after_id, size: queue.download_candidates(
            session, scope, max_attempts=max_attempts, after_id=after_id, limit=size
        ),
        limit=limit,
    )


def _download_one(
    task: DownloadTask,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    report: StageReport,
) -> Downloaded | Failed:
    try:
        with report.timed("fetch"):
            fetched = fetcher.fetch(task.source_url)
    except FetchError as exc:
        return Failed(exc.cause, exc.detail, retryable=exc.retryable, gone=exc.gone)

    try:
        with report.timed("validate"):
            info = validate_source(fetched.data, settings.limits)
            checksum = hashlib.sha256(fetched.data).hexdigest()
    except ImageRejected as exc:
        return Failed(exc.cause, exc.detail, retryable=False)

    key = original_key(task.storage_path, info.format)
    try:
        with report.timed("upload"):
            unchanged = (
                task.previous_checksum == checksum
                and task.previous_format == info.format
                and store.head(Bucket.ORIGINALS, key) is not None
            )
            if not unchanged:
                store.put(
                    Bucket.ORIGINALS,
                    key,
                    fetched.data,
                    content_type=MIME_BY_EXTENSION[source_extension(info.format)],
                )
    except StorageError as exc:
        return Failed("storage_error", str(exc), retryable=True)
    report.add_bytes(bytes_in=len(fetched.data), objects_written=0 if unchanged else 1)
    return Downloaded(info=info, checksum=checksum, uploaded=not unchanged, validators=fetched.validators)


def _record_download(task: DownloadTask, outcome: Downloaded):
    def apply(session) -> None:
        results.record_download(
            session,
            task.artwork_id,
            checksum=outcome.checksum,
            source_format=outcome.info.format,
            width=outcome.info.width,
            height=outcome.info.height,
            size=outcome.info.byte_size,
            source_url=task.source_url,
            etag=outcome.validators.etag,
            last_modified=outcome.validators.last_modified,
        )

    return apply


def _record_failure(task: DownloadTask, outcome: Failed, policy: str):
    def apply(session) -> None:
        results.record_failure(
            session,
            task.artwork_id,
            cause=outcome.cause,
            detail=outcome.detail,
            retryable=outcome.retryable,
            gone=outcome.gone,
            source_url=task.source_url,
        )
        settle_refused(
            session, task.artwork_id, policy=policy, retryable=outcome.retryable, source_url=task.source_url
        )

    return apply
