"""Stage 2: render every stored source into its sizes, upload them, then record their URLs.

Per artwork: read the source from the originals bucket, decode it once, render all sizes, upload each
distinct output, and only then, in one catalog transaction, record the renditions and the artwork's
local URLs. A source that fails to decode is deleted from storage and its cause recorded, so nothing
is left behind for bad input.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tvdb_images.catalog import queue, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import ArtworkStatus
from tvdb_images.catalog.queue import RenderTask
from tvdb_images.catalog.results import StoredPlaceholders, StoredRendition
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.signatures import split_signature
from tvdb_images.catalog.stale import settle_refused
from tvdb_images.imaging import ImageRejected, RenderSettings, render_renditions
from tvdb_images.imaging.perceptual import to_signed
from tvdb_images.partition_keys import partition_name
from tvdb_images.pipeline import dedup
from tvdb_images.pipeline.batching import CatalogWriter
from tvdb_images.pipeline.concurrency import RenderSlots, bounded_map
from tvdb_images.pipeline.memory import limit_malloc_arenas
from tvdb_images.pipeline.paging import pages_by_id
from tvdb_images.pipeline.report import StageReport
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import RENDITION_CACHE_CONTROL, Bucket, ObjectNotFound, ObjectStore, StorageError
from tvdb_images.storage.layout import MIME_BY_EXTENSION, rendition_key, source_extension

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    renditions: tuple[StoredRendition, ...]
    # Formats whose recorded renditions are current and stay (None: keep every other format's).
    kept_formats: tuple[str, ...] | None = None
    placeholders: StoredPlaceholders | None = None  # none for a mirrored source (nothing decoded)
    # Nothing was rendered (only the catalog changes): the recorded placeholders stay as they are.
    keep_placeholders: bool = False
    crop_windows: dict[str, tuple[int, int, int, int]] | None = None  # None: leave the recorded ones


@dataclass(frozen=True)
class RenderFailed:
    cause: str
    detail: str
    retryable: bool
    source_deleted: bool = False
    source_kept: bool = False  # the stored source is fine: render again next run, never fetch again


def render_stored_sources(
    catalog: Catalog,
    store: ObjectStore,
    settings: PipelineSettings,
    scope: Scope,
    *,
    include_stale: bool = False,
    limit: int | None = None,
) -> StageReport:
    report = StageReport(stage="render")
    started = time.perf_counter()
    limit_malloc_arenas()
    signature = settings.signature
    touched_items: set[tuple[str, int]] = set()
    # At most `render_workers` renders at once (and one of a 4K-class source): the extra threads read
    # sources and upload meanwhile, and a run process's memory stays bounded whatever the mix.
    render_slots = RenderSlots(settings.render_workers)
    shares = dedup.RunShares(catalog, store, signature)

    def run(task: RenderTask) -> Rendered | RenderFailed | dedup.Shared:
        if not settings.optimization_enabled:
            return _mirror_one(task, store)
        with report.working_on(partition_name(task.content_type, task.storage_path)):
            try:  # an identical source already rendered (before, or in this run) is shared
                full = dedup.shares_objects(catalog, task)

                def render() -> Rendered | RenderFailed:
                    return _render_one(task, store, settings, report, render_slots, full=full)

                if not settings.dedup_exact:  # each renders on its own; objects others share move first
                    dedup.release_own_keys(catalog, store, task)
                    return render()
                return shares.render_once(task, render)
            except StorageError as exc:  # handing shared objects over before writing over them
                return RenderFailed("storage_error", str(exc), retryable=True, source_kept=True)

    def refresh_items(session: Session, _writes: list) -> None:
        if touched_items:
            results.refresh_content_local_urls(session, list(touched_items))
            touched_items.clear()

    with CatalogWriter(catalog, report, batch_size=25, after_flush=refresh_items) as writer:
        tasks = _candidates(catalog, scope, signature, include_stale, limit)
        # More threads than render workers, so reading sources and uploading overlap with encoding.
        for task, outcome in bounded_map(
            run, tasks, workers=settings.render_workers + 2, max_in_flight=settings.render_workers * 2 + 2
        ):
            partition = partition_name(task.content_type, task.storage_path)
            if isinstance(outcome, dedup.Shared):
                report.add_success(partition, unchanged=True)
                touched_items.add((task.content_type, task.content_id))
                writer.add(dedup.record_shared(task, outcome, signature))
            elif isinstance(outcome, Rendered):
                report.add_success(partition)
                touched_items.add((task.content_type, task.content_id))
                writer.add(_record(task, outcome, signature, settings.render.format))
            else:
                report.add_failure(outcome.cause, outcome.detail, partition)
                writer.add(_record_failure(task, outcome, settings.stale_image_policy))
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _candidates(
    catalog: Catalog, scope: Scope, signature: str, include_stale: bool, limit: int | None
) -> Iterator[RenderTask]:
    return pages_by_id(
        catalog,
        lambda session, after_id, size: queue.render_candidates(
            session, scope, signature=signature, include_stale=include_stale, after_id=after_id, limit=size
        ),
        limit=limit,
    )


def _render_one(
    task: RenderTask,
    store: ObjectStore,
    settings: PipelineSettings,
    report: StageReport,
    render_slots: RenderSlots | None = None,
    *,
    full: bool = False,
) -> Rendered | RenderFailed:
    """`full`: render every listed format, whatever is current (an artwork that shares objects)."""
    renders, kept = (settings.renders, ()) if full else formats_to_render(task, settings)
    if not renders:  # a format dropped, or the list reordered: only the catalog changes
        return Rendered(renditions=(), kept_formats=kept, keep_placeholders=True)
    try:
        with report.timed("read_source"):
            data = store.get(Bucket.ORIGINALS, task.original_key)
    except ObjectNotFound:
        return RenderFailed(
            "source_missing", f"{task.original_key} is not in the originals bucket", retryable=True
        )
    except StorageError as exc:
        return RenderFailed("storage_error", str(exc), retryable=True, source_kept=True)

    try:
        pixels = (task.source_width or 0) * (task.source_height or 0) or None
        with render_slots.hold(pixels) if render_slots else nullcontext(), report.timed("render"):
            result = render_renditions(data, renders, settings.limits)
    except ImageRejected as exc:
        deleted = _delete_source(store, task)
        return RenderFailed(exc.cause, exc.detail, retryable=False, source_deleted=deleted)

    signatures = settings.format_signatures
    stored: list[StoredRendition] = []
    written = 0
    out_bytes = 0
    try:
        with report.timed("upload"):
            for rendition in result.renditions:
                key = rendition_key(task.storage_path, rendition.size, rendition.extension)
                store.put(
                    Bucket.THUMBNAILS,
                    key,
                    rendition.data,
                    content_type=rendition.mime,
                    cache_control=RENDITION_CACHE_CONTROL,
                )
                written += 1
                out_bytes += len(rendition.data)
                stored.append(
                    StoredRendition(
                        size=rendition.size,
                        format=rendition.format,
                        storage_key=key,
                        url=store.url(Bucket.THUMBNAILS, key),
                        width=rendition.width,
                        height=rendition.height,
                        bytes=len(rendition.data),
                        content_type=rendition.mime,
                        checksum=hashlib.sha256(rendition.data).hexdigest(),
                        render_signature=signatures[rendition.format],
                    )
                )
    except StorageError as exc:
        # Objects already written are harmless: no row references them until every size is stored,
        # and the retry overwrites the same keys.
        return RenderFailed("storage_error", str(exc), retryable=True, source_kept=True)
    report.add_bytes(bytes_in=len(data), bytes_out=out_bytes, objects_written=written)
    found = result.placeholders
    phash = None if result.perceptual_hash is None else to_signed(result.perceptual_hash)
    placeholders = (
        StoredPlaceholders(found.thumbhash, found.blurhash, found.dominant_color, phash) if found else None
    )
    # Every format's crop of one name shares its window (one decode, one choice): recorded once.
    windows = {r.size: (r.crop.x, r.crop.y, r.crop.width, r.crop.height) for r in result.renditions if r.crop}
    return Rendered(
        renditions=tuple(stored), kept_formats=kept, placeholders=placeholders, crop_windows=windows
    )


def formats_to_render(
    task: RenderTask, settings: PipelineSettings
) -> tuple[tuple[RenderSettings, ...], tuple[str, ...]]:
    """The listed formats this artwork needs rendered, and those whose stored renditions are current.

    A processed artwork's signature names the format signatures it is stored with: a format whose
    own signature is among them is kept as it is (its objects untouched), the others are rendered.
    A new or changed source renders every format."""
    current = set(split_signature(task.render_signature)) if task.status == ArtworkStatus.PROCESSED else set()
    signatures = settings.format_signatures
    renders = tuple(r for r in settings.renders if signatures[r.format] not in current)
    kept = tuple(r.format for r in settings.renders if signatures[r.format] in current)
    return renders, kept


def _mirror_one(task: RenderTask, store: ObjectStore) -> Rendered | RenderFailed:
    """With optimization off, the unchanged source in the originals bucket is the artwork's only copy."""
    info = store.head(Bucket.ORIGINALS, task.original_key)
    if info is None:
        return RenderFailed(
            "source_missing", f"{task.original_key} is not in the originals bucket", retryable=True
        )
    extension = source_extension(task.source_format)
    return Rendered(
        renditions=(
            StoredRendition(
                size="original",
                format=task.source_format,
                storage_key=task.original_key,
                url=store.url(Bucket.ORIGINALS, task.original_key),
                width=task.source_width or 0,
                height=task.source_height or 0,
                bytes=info.size,
                content_type=MIME_BY_EXTENSION[extension],
                checksum=task.source_checksum,
            ),
        )
    )


def _delete_source(store: ObjectStore, task: RenderTask) -> bool:
    try:
        store.delete(Bucket.ORIGINALS, [task.original_key])
        return True
    except StorageError:
        log.warning("could not delete refused source %s; orphan cleanup will remove it", task.original_key)
        return False


def _record(task: RenderTask, outcome: Rendered, signature: str, primary: str) -> Callable[[Session], None]:
    def apply(session: Session) -> None:
        results.record_renditions(
            session,
            task,
            outcome.renditions,
            signature=signature,
            keep_formats=outcome.kept_formats,
            primary_format=primary if outcome.kept_formats is not None else None,
            placeholders=outcome.placeholders,
            keep_placeholders=outcome.keep_placeholders,
        )
        if outcome.crop_windows is not None:
            results.record_crop_windows(session, task.artwork_id, outcome.crop_windows)

    return apply


def _record_failure(task: RenderTask, outcome: RenderFailed, policy: str):
    def apply(session: Session) -> None:
        results.record_failure(
            session,
            task.artwork_id,
            cause=outcome.cause,
            detail=outcome.detail,
            retryable=outcome.retryable,
            drop_source=outcome.source_deleted,
            keep_status=outcome.source_kept,
            # A deleted source must be forgotten whatever happened to the row meanwhile.
            source_url=None if outcome.source_deleted else task.source_url,
        )
        if not outcome.source_kept:
            settle_refused(
                session,
                task.artwork_id,
                policy=policy,
                retryable=outcome.retryable,
                source_url=None if outcome.source_deleted else task.source_url,
            )

    return apply
