"""`GET /api/v1/images/{content_type}/{content_id}/{image_type}/{size}`: a content item's image."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from serving.delivery import ImageRequest, deliver, not_stored
from serving.dependencies import state_of
from serving.errors import ApiError, error_responses
from serving.routes.params import ContentId, ContentTypePath, ImageTypePath, SizePath, Version, checked_size
from serving.state import ServingState
from tvdb_images.registry import FORMATS

router = APIRouter(prefix="/api/v1/images", tags=["images"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The image bytes, streamed. Headers: `Content-Type`, `Content-Length`, strong "
        "`ETag`, `Cache-Control`, `Vary: Accept` (negotiated URLs), `Content-Location` (the URL pinned "
        "to exactly these bytes), `X-Artwork-Id`.",
        "content": {f.mime: _BINARY for f in FORMATS},
    },
    302: {"description": "Not stored yet and MISSING_IMAGE_REDIRECT=true: redirect to the TVDB source."},
    304: {"description": "`If-None-Match` matched the current ETag (weak comparison)."},
    307: {"description": "CDN_BASE_URL is set: redirect to the rendition on the CDN."},
    **error_responses(404, 422, 500, 503),
}


async def get_image(
    request: Request,
    content_type: ContentTypePath,
    content_id: ContentId,
    image_type: ImageTypePath,
    size: SizePath,
    v: Version = None,
) -> Response:
    """A content item's image of one type and size, streamed from storage (or redirected to the CDN).

    **Which artwork:** when the item has several of the type, the primary one among those stored:
    highest TVDB score, then English before no language before other languages, then the lowest id.

    **Format:** among the stored formats the client accepts equally (AVIF only when `Accept` names
    `image/avif`; wildcards do not count), the smaller encoding of this size; WebP when nothing stored
    is acceptable. Artwork stored with ENABLE_IMAGE_OPTIMIZATION=false has only its unchanged
    source, as size `original`.

    **Caching:** strong `ETag`; `If-None-Match` answers 304. `Cache-Control: public,
    max-age=IMAGE_CACHE_MAX_AGE_SECONDS`, or a year and `immutable` when `v` matches the stored bytes.

    **Not stored yet:** 404 `image_not_stored` naming the TVDB source URL, the artwork's status and
    failure cause; with MISSING_IMAGE_REDIRECT=true a 302 to the source instead.
    HEAD answers exactly what GET would (status and headers) without a body.

    **Freshness:** each process remembers lookups for SERVING_CACHE_SECONDS (default 5 s), so a
    replaced rendition or a new primary artwork is served at most that much later.
    """
    state = state_of(request)
    checked = checked_size(size, state.settings.crop_names)
    return await item_image(request, state, content_type.value, content_id, image_type.value, checked, v)


async def item_image(
    request: Request,
    state: ServingState,
    content_type: str,
    content_id: int,
    image_type: str,
    size: str,
    v: str | None,
) -> Response:
    """The answer of `get_image` for valid parameters: the route's and `serving.fast_path`'s."""
    artwork = await state.lookups.item_image(content_type, content_id, image_type)
    if artwork is None:
        raise ApiError(
            404,
            "artwork_not_found",
            f"the catalog has no {image_type} artwork for {content_type} {content_id}",
            details={"content_type": content_type, "content_id": content_id},
        )
    if not artwork.renditions:
        return not_stored(artwork, state.settings)
    return await deliver(
        request,
        artwork,
        ImageRequest(size=size, pinned_format=None, version=v),
        settings=state.settings,
        store=state.store,
        byte_cache=state.byte_cache,
    )


_PATH = "/{content_type}/{content_id}/{image_type}/{size}"
router.get(_PATH, responses=IMAGE_RESPONSES, response_class=Response)(get_image)
router.head(_PATH, responses=IMAGE_RESPONSES, response_class=Response, summary="Image headers only (HEAD)")(
    get_image
)
