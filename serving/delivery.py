"""Answer an image request for one chosen artwork and size: pick the format, then redirect to the CDN,
answer 304, or send the bytes (from the byte cache, or read from storage); or explain why there is no
image yet.

Everything but storage reads runs on the event loop; a storage read runs in the thread pool. Objects
the byte cache can hold are read whole, checked against the catalog checksum and kept; larger ones
are streamed from storage in chunks. HEAD answers exactly what GET would (status and headers): it
reads what GET reads, or for streamed sizes asks storage for the object's headers.

Storage keys come only from catalog rows, and `is_layout_key` checks each one again before the store
sees it: nothing from the request path is ever part of a key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from serving.byte_cache import RenditionByteCache
from serving.conditional import cache_control, http_date, not_modified
from serving.errors import NO_STORE, ApiError, storage_unavailable
from serving.negotiation import choose_format
from serving.queries import ArtworkRecord, RenditionRecord
from serving.views import COUNTED_STATUSES
from tvdb_images.config import Settings
from tvdb_images.storage import ObjectNotFound, ObjectStore, ObjectStream, StorageError
from tvdb_images.storage.layout import is_layout_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRequest:
    size: str
    pinned_format: str | None  # `?format=` on artwork URLs; None means negotiate with Accept
    version: str | None  # `?v=`


async def deliver(
    request: Request,
    artwork: ArtworkRecord,
    wanted: ImageRequest,
    *,
    settings: Settings,
    store: ObjectStore,
    byte_cache: RenditionByteCache,
) -> Response:
    response = await _answer(request, artwork, wanted, settings=settings, store=store, byte_cache=byte_cache)
    if request.method == "GET" and response.status_code in COUNTED_STATUSES:
        request.app.state.serving.views.record(artwork.id, wanted.size)  # serving.views: what counts
    return response


async def _answer(
    request: Request,
    artwork: ArtworkRecord,
    wanted: ImageRequest,
    *,
    settings: Settings,
    store: ObjectStore,
    byte_cache: RenditionByteCache,
) -> Response:
    candidates = artwork.renditions_of(wanted.size)
    if wanted.pinned_format is not None:
        candidates = [r for r in candidates if r.format == wanted.pinned_format]
    if not candidates:
        if not artwork.renditions:
            return not_stored(artwork, settings)
        raise ApiError(
            404,
            "size_not_available",
            f"artwork {artwork.id} has no {wanted.size} rendition"
            + (f" in {wanted.pinned_format}" if wanted.pinned_format else ""),
            parameter="size" if wanted.pinned_format is None else "format",
            details={
                "artwork_id": artwork.id,
                "available": [{"size": r.size, "format": r.format} for r in artwork.renditions],
            },
        )

    chosen = _choose(candidates, wanted.pinned_format, request.headers.get("accept"))
    if not is_layout_key(chosen.storage_key, settings.crop_names):
        log.error(
            "artwork %s rendition key %r is not a layout key; refusing it", artwork.id, chosen.storage_key
        )
        raise ApiError(500, "invalid_storage_key", "the catalog holds a storage key outside the layout")

    # A negotiated URL can send any format of the size; a pinned one only its own.
    version = artwork.size_versions[wanted.size] if wanted.pinned_format is None else chosen.version
    headers = {
        "Cache-Control": cache_control(
            versioned=wanted.version == version, max_age=settings.image_cache_max_age_seconds
        ),
        "Content-Location": chosen.pinned_path,
        "X-Artwork-Id": str(artwork.id),
    }
    if artwork.stale:
        # The last good image of a source that has since changed or been refused (STALE_IMAGE_POLICY).
        headers["X-Artwork-Stale"] = "true"
    if wanted.pinned_format is None:
        headers["Vary"] = "Accept"

    if settings.cdn_base_url:
        return RedirectResponse(
            store.url(chosen.bucket, chosen.storage_key), status_code=307, headers=headers
        )

    headers["ETag"] = chosen.etag
    headers["Accept-Ranges"] = "none"
    if artwork.processed_at is not None:
        headers["Last-Modified"] = http_date(artwork.processed_at)
    if not_modified(request.headers, chosen.etag, artwork.processed_at):
        return Response(status_code=304, headers=headers)
    if byte_cache.holds_size(chosen.bytes):
        # HEAD too: reading the object is how GET learns its status and whether the bytes match the
        # catalog; the server sends no body, and the bytes are kept for the GET that follows.
        return await _send_whole(store, byte_cache, chosen, headers)
    if request.method == "HEAD":
        return await run_in_threadpool(_head, store, chosen, headers)
    return await run_in_threadpool(_stream, store, chosen, headers)


def _choose(candidates: list[RenditionRecord], pinned: str | None, accept: str | None) -> RenditionRecord:
    if pinned is not None:
        return candidates[0]
    sizes = {r.format: r.bytes for r in candidates}  # the smaller of equally acceptable encodings wins
    image_format = choose_format(sizes, accept, sizes)
    return next(r for r in candidates if r.format == image_format)


async def _send_whole(
    store: ObjectStore, byte_cache: RenditionByteCache, rendition: RenditionRecord, headers: dict[str, str]
) -> Response:
    data = byte_cache.get(rendition)
    if data is None:
        data = await run_in_threadpool(_read_whole, store, rendition)
        if not byte_cache.offer(rendition, data):
            headers = _unconfirmed(headers)
    return Response(data, media_type=rendition.content_type, headers=headers)


def _read_whole(store: ObjectStore, rendition: RenditionRecord) -> bytes:
    stream = _open(store, rendition)
    try:
        return stream.body.read()
    finally:
        stream.close()


def _stream(store: ObjectStore, rendition: RenditionRecord, headers: dict[str, str]) -> Response:
    stream = _open(store, rendition)
    if stream.info.size != rendition.bytes:
        headers = _unconfirmed(headers)
    headers["Content-Length"] = str(stream.info.size)
    return StreamingResponse(
        stream.iter_chunks(),
        status_code=200,
        media_type=rendition.content_type,
        headers=headers,
        background=BackgroundTask(stream.close),
    )


def _head(store: ObjectStore, rendition: RenditionRecord, headers: dict[str, str]) -> Response:
    """What `_stream` would answer, from a storage HEAD instead of a GET."""
    try:
        info = store.head(rendition.bucket, rendition.storage_key)
    except StorageError as exc:
        raise _storage_unavailable(rendition, exc) from exc
    if info is None:
        raise _object_missing(rendition)
    if info.size != rendition.bytes:
        headers = _unconfirmed(headers)
    headers["Content-Length"] = str(info.size)
    return Response(status_code=200, media_type=rendition.content_type, headers=headers)


def _unconfirmed(headers: dict[str, str]) -> dict[str, str]:
    """Bytes that do not match the catalog's checksum (replaced by a re-render that is not recorded
    yet) get no ETag and no cache lifetime."""
    confirmed = {**headers, "Cache-Control": "no-cache"}
    confirmed.pop("ETag", None)
    return confirmed


def _open(store: ObjectStore, rendition: RenditionRecord) -> ObjectStream:
    try:
        return store.open(rendition.bucket, rendition.storage_key)
    except ObjectNotFound:
        raise _object_missing(rendition) from None
    except StorageError as exc:
        raise _storage_unavailable(rendition, exc) from exc


def _object_missing(rendition: RenditionRecord) -> ApiError:
    log.error(
        "catalog references %s/%s but storage has no such object", rendition.bucket, rendition.storage_key
    )
    return ApiError(
        404,
        "object_missing",
        "the catalog lists this image but storage has lost it; a sync of this content item (or of its "
        "partition) stores it again",
    )


def _storage_unavailable(rendition: RenditionRecord, exc: StorageError) -> ApiError:
    """The client hears which dependency is down; the log keeps where and why."""
    log.error("object storage unavailable reading %s/%s: %s", rendition.bucket, rendition.storage_key, exc)
    return storage_unavailable()


def not_stored(artwork: ArtworkRecord, settings: Settings) -> Response:
    """No local copy yet: a 404 naming the source, or (MISSING_IMAGE_REDIRECT) a redirect to it."""
    if settings.missing_image_redirect and _redirectable(artwork.source_url, settings):
        return RedirectResponse(artwork.source_url, status_code=302, headers=NO_STORE)
    raise not_stored_error(artwork)


def not_stored_error(artwork: ArtworkRecord) -> ApiError:
    """The 404 of an artwork with nothing stored yet, naming its source, status and failure cause."""
    return ApiError(
        404,
        "image_not_stored",
        f"artwork {artwork.id} is not stored yet (status: {artwork.status})",
        details={
            "artwork_id": artwork.id,
            "source_url": artwork.source_url,
            "artwork_status": artwork.status,
            "failure_cause": artwork.failure_cause,
        },
    )


def _redirectable(url: str, settings: Settings) -> bool:
    """Redirect only to sources the pipeline itself may fetch: never an open redirect."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.lower().rsplit("@", 1)[-1]
    allowed = set(settings.allowed_source_hosts)
    return parts.scheme in ("http", "https") and (host in allowed or netloc in allowed)
