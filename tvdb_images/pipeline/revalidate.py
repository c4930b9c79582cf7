"""Revalidate stored sources against their origin: a new file behind an unchanged URL is noticed.

Per due artwork, the cheapest question that tells: a conditional GET with the recorded ETag /
Last-Modified (a 304 costs no download); for an origin that sent neither, a HEAD comparing size and
type, or a full GET (SOURCE_REVALIDATE_WITHOUT_VALIDATORS). A 200 is compared by checksum: identical
bytes change nothing; new bytes that validate are stored (the row goes back to `downloaded`, and the
render stage then replaces the renditions); new bytes that are refused leave the last good image to
STALE_IMAGE_POLICY. A transient failure records nothing: the artwork stays due.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tvdb_images.catalog import results, revalidation
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.revalidation import RevalidationTask
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import FetchedImage, FetchError, ImageFetcher, SourceValidators
from tvdb_images.imaging import ImageRejected, SourceInfo, validate_source
from tvdb_images.partition_keys import partition_name
from tvdb_images.pipeline.batching import CatalogWriter
from tvdb_images.pipeline.concurrency import bounded_map
from tvdb_images.pipeline.paging import pages_by_id
from tvdb_images.pipeline.report import StageReport
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket, ObjectStore, StorageError
from tvdb_images.storage.layout import MIME_BY_EXTENSION, original_key, source_extension

# A daily pass over 1/N of the shards reaches a shard again N days later at the same hour: artwork
# checked less than this much short of a full period is due too, or it would wait another N days.
DUE_SLACK = timedelta(hours=12)

NOT_MODIFIED = "not_modified"  # 304 to a conditional GET
SAME_SIZE_AND_TYPE = "same_size_and_type"  # HEAD matched the stored source
IDENTICAL = "identical"  # a full 200 with the stored bytes
CHANGED = "changed"  # new bytes stored; the render stage replaces the renditions
REFUSED = "refused"  # the origin now serves something refused, or nothing (404/410)
ERROR = "error"  # transient (timeout, 5xx, storage): nothing recorded, still due


@dataclass
class RevalidationReport(StageReport):
    """A stage report with what the origin answered per artwork and the requests that cost, for the run
    and for each partition (credited to the partition the thread is `working_on`)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    outcomes_by_partition: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, outcome: str, *requests: str) -> None:
        partition = getattr(self._current, "partition", None)
        with self._lock:
            self.outcomes[outcome] += 1
            self.requests.update(requests)
            if partition is not None:
                self.outcomes_by_partition.setdefault(partition, Counter())[outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {"outcomes": dict(self.outcomes), "requests": dict(self.requests)}


@dataclass(frozen=True)
class _Confirmed:
    validators: SourceValidators
    replace_validators: bool


@dataclass(frozen=True)
class _Changed:
    info: SourceInfo
    checksum: str
    validators: SourceValidators


@dataclass(frozen=True)
class _Refused:
    cause: str
    detail: str
    gone: bool


@dataclass(frozen=True)
class _Transient:
    cause: str
    detail: str


_Outcome = _Confirmed | _Changed | _Refused | _Transient


def due_before(settings: PipelineSettings, now: datetime | None = None) -> datetime | None:
    """Artwork last checked before this is due; None when revalidation is off (SOURCE_REVALIDATE_DAYS=0)."""
    if settings.revalidate_every is None:
        return None
    return (now or datetime.now(UTC)) - settings.revalidate_every + DUE_SLACK


def revalidate_sources(
    catalog: Catalog,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    scope: Scope,
    *,
    checked_before: datetime | None,
    limit: int | None = None,
) -> RevalidationReport:
    """Ask the origin about every due source in `scope` (`checked_before=None`: every served one)."""
    report = RevalidationReport(stage="revalidate")
    started = time.perf_counter()

    def run(task: RevalidationTask) -> _Outcome:
        with report.working_on(partition_name(task.content_type, task.storage_path)):
            return _revalidate_one(task, store, fetcher, settings, report)

    with CatalogWriter(catalog, report) as writer:
        tasks = _candidates(catalog, scope, checked_before, limit)
        for task, outcome in bounded_map(run, tasks, workers=settings.download_workers):
            partition = partition_name(task.content_type, task.storage_path)
            if isinstance(outcome, _Transient):
                report.add_failure(outcome.cause, outcome.detail, partition)
                continue
            if isinstance(outcome, _Refused):
                report.add_failure(outcome.cause, outcome.detail, partition)
            else:
                report.add_success(partition)
            writer.add(_record(task, outcome, settings.stale_image_policy))
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _candidates(
    catalog: Catalog, scope: Scope, checked_before: datetime | None, limit: int | None
) -> Iterator[RevalidationTask]:
    return pages_by_id(
        catalog,
        lambda session, after_id, size: revalidation.revalidation_candidates(
            session, scope, checked_before=checked_before, after_id=after_id, limit=size
        ),
        limit=limit,
    )


def _revalidate_one(
    task: RevalidationTask,
    store: ObjectStore,
    fetcher: ImageFetcher,
    settings: PipelineSettings,
    report: RevalidationReport,
) -> _Outcome:
    stored = task.source_checksum is not None and task.source_format is not None
    recorded = SourceValidators(task.etag, task.last_modified)
    try:
        with report.timed("fetch"):
            if stored and recorded:
                fetched = fetcher.fetch(task.source_url, validators=recorded)
                if fetched.not_modified:
                    report.count(NOT_MODIFIED, "conditional_get")
                    return _Confirmed(fetched.validators, replace_validators=False)
                requests: tuple[str, ...] = ("conditional_get",)
            elif stored and settings.revalidate_without_validators == "head" and task.file_size:
                head = fetcher.head(task.source_url)
                if _same_size_and_type(head.content_length, head.content_type, task):
                    report.count(SAME_SIZE_AND_TYPE, "head")
                    return _Confirmed(SourceValidators(), replace_validators=False)
                fetched = fetcher.fetch(task.source_url)
                requests = ("head", "get")
            else:
                fetched = fetcher.fetch(task.source_url)
                requests = ("get",)
    except FetchError as exc:
        if exc.retryable:
            report.count(ERROR)
            return _Transient(exc.cause, exc.detail)
        report.count(REFUSED)
        return _Refused(exc.cause, exc.detail, gone=exc.gone)
    return _compare(task, fetched, store, settings, report, requests)


def _compare(
    task: RevalidationTask,
    fetched: FetchedImage,
    store: ObjectStore,
    settings: PipelineSettings,
    report: RevalidationReport,
    requests: tuple[str, ...],
) -> _Outcome:
    checksum = hashlib.sha256(fetched.data).hexdigest()
    report.add_bytes(bytes_in=len(fetched.data))
    if checksum == task.source_checksum:
        report.count(IDENTICAL, *requests)
        return _Confirmed(fetched.validators, replace_validators=True)
    try:
        with report.timed("validate"):
            info = validate_source(fetched.data, settings.limits)
    except ImageRejected as exc:
        report.count(REFUSED, *requests)
        return _Refused(exc.cause, exc.detail, gone=False)
    try:
        with report.timed("upload"):
            # Same key when the format is unchanged: the object is replaced whole (never absent); a new
            # format gets a new key, and the old one is unreferenced once the row is updated.
            store.put(
                Bucket.ORIGINALS,
                original_key(task.storage_path, info.format),
                fetched.data,
                content_type=MIME_BY_EXTENSION[source_extension(info.format)],
            )
    except StorageError as exc:
        report.count(ERROR, *requests)
        return _Transient("storage_error", str(exc))
    report.add_bytes(objects_written=1)
    report.count(CHANGED, *requests)
    return _Changed(info, checksum, fetched.validators)


def _same_size_and_type(length: int | None, media_type: str | None, task: RevalidationTask) -> bool:
    """HEAD agrees with the stored source: the same size, and the same type if it names an image type."""
    if length is None or length != task.file_size or task.source_format is None:
        return False
    if media_type is None or not media_type.startswith("image/"):
        return True
    return media_type == MIME_BY_EXTENSION[source_extension(task.source_format)]


def _record(task: RevalidationTask, outcome: _Outcome, policy: str) -> Callable[[Session], None]:
    def apply(session: Session) -> None:
        if isinstance(outcome, _Confirmed):
            revalidation.record_confirmed(
                session,
                task,
                etag=outcome.validators.etag,
                last_modified=outcome.validators.last_modified,
                replace_validators=outcome.replace_validators,
            )
        elif isinstance(outcome, _Changed):
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
        elif isinstance(outcome, _Refused):
            revalidation.record_refused(
                session, task, cause=outcome.cause, detail=outcome.detail, gone=outcome.gone, policy=policy
            )

    return apply
