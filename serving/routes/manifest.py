"""`GET .../{content_type}/{content_id}/{image_type}/manifest` and `.../artwork/{artwork_id}/manifest`:
what a client needs to build a responsive `<picture>` (serving.manifest), in one cacheable JSON answer.

Declared before the image routes, whose `{size}` segment would otherwise take `manifest` for a crop's
name (the registry refuses a crop of that name, so no image is hidden by it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request, Response

from serving.conditional import if_none_match_hits
from serving.delivery import not_stored_error
from serving.dependencies import state_of
from serving.errors import ApiError, error_responses
from serving.links import versioned_url
from serving.manifest import build_manifest
from serving.queries import ArtworkRecord
from serving.routes.params import ArtworkId, ContentId, ContentTypePath, ImageTypePath
from serving.schemas import ImageManifest
from serving.state import ServingState

router = APIRouter(prefix="/api/v1/images")

MANIFEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The manifest. Headers: `Cache-Control: public, "
        "max-age=METADATA_CACHE_MAX_AGE_SECONDS`, a weak `ETag` of the body "
        "(`If-None-Match` answers 304), `X-Artwork-Id`.",
    },
    304: {"description": "`If-None-Match` matched the current ETag."},
    **error_responses(404, 422, 503),
}


def _answer(request: Request, state: ServingState, artwork: ArtworkRecord) -> Response:
    if not artwork.renditions:
        raise not_stored_error(artwork)
    manifest = build_manifest(artwork, lambda r: versioned_url(state.settings, state.store, r))
    body = manifest.model_dump_json().encode()
    headers = {
        "Cache-Control": f"public, max-age={state.settings.metadata_cache_max_age_seconds}",
        "ETag": f'W/"{hashlib.sha256(body).hexdigest()[:32]}"',
        "X-Artwork-Id": str(artwork.id),
    }
    if if_none_match_hits(request.headers.get("if-none-match"), headers["ETag"][2:]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def get_item_manifest(
    request: Request,
    content_type: ContentTypePath,
    content_id: ContentId,
    image_type: ImageTypePath,
) -> Response:
    """The responsive manifest of the artwork the item's image URLs serve (the same primary choice).

    Every stored size and format with its versioned URL (on the CDN when CDN_BASE_URL is set), width,
    height and bytes; per format a ready `srcset` over the fit-in sizes (crops are listed by name
    beside it); a suggested `sizes`; the `<img>` fallback; the placeholders; the source's dimensions
    and aspect ratio. 404 `artwork_not_found` for an item without artwork of the type, 404
    `image_not_stored` while nothing is stored (never a redirect: this is not an image). HEAD answers
    the headers GET would.
    """
    state = state_of(request)
    artwork = await state.lookups.item_image(content_type.value, content_id, image_type.value)
    if artwork is None:
        raise ApiError(
            404,
            "artwork_not_found",
            f"the catalog has no {image_type.value} artwork for {content_type.value} {content_id}",
            details={"content_type": content_type.value, "content_id": content_id},
        )
    return _answer(request, state, artwork)


async def get_artwork_manifest(request: Request, artwork_id: ArtworkId) -> Response:
    """The responsive manifest of one specific artwork (not only an item's primary one); the same
    document as the item's manifest. HEAD answers the headers GET would."""
    state = state_of(request)
    found = await state.lookups.artwork(artwork_id)
    if found is None:
        raise ApiError(404, "artwork_not_found", f"no artwork with id {artwork_id}", parameter="artwork_id")
    return _answer(request, state, found.artwork)


for _path, _route, _tag in (
    ("/{content_type}/{content_id}/{image_type}/manifest", get_item_manifest, "images"),
    ("/artwork/{artwork_id}/manifest", get_artwork_manifest, "artwork"),
):
    router.get(_path, response_model=ImageManifest, responses=MANIFEST_RESPONSES, tags=[_tag])(_route)
    router.head(
        _path,
        response_model=ImageManifest,
        responses=MANIFEST_RESPONSES,
        tags=[_tag],
        summary="Manifest headers only (HEAD)",
    )(_route)
