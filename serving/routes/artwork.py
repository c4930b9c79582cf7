"""`GET /api/v1/images/artwork/{artwork_id}` (metadata) and `.../{artwork_id}/{size}` (its image)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from serving.delivery import ImageRequest, deliver
from serving.dependencies import state_of
from serving.errors import ApiError, error_responses
from serving.links import public_url
from serving.queries import ArtworkView, RenditionRecord
from serving.routes.images import IMAGE_RESPONSES
from serving.routes.params import ArtworkId, SizePath, Version, checked_size
from serving.schemas import ArtworkMetadata, CropWindowInfo, ImageFormat, Placeholders, RenditionInfo
from serving.state import ServingState
from tvdb_images.catalog.results import StoredPlaceholders

router = APIRouter(prefix="/api/v1/images/artwork", tags=["artwork"])


async def _find(state: ServingState, artwork_id: int) -> ArtworkView:
    found = await state.lookups.artwork(artwork_id)
    if found is None:
        raise ApiError(404, "artwork_not_found", f"no artwork with id {artwork_id}", parameter="artwork_id")
    return found


@router.get("/{artwork_id}", response_model=ArtworkMetadata, responses=error_responses(404, 422))
async def get_artwork(request: Request, response: Response, artwork_id: ArtworkId) -> ArtworkMetadata:
    """One artwork's metadata: every stored size and format with its public URL, and its pipeline state.

    `url` is the CDN URL when CDN_BASE_URL is set, else this API's URL for exactly those bytes
    (format and content version pinned, so it may be cached as immutable): absolute under
    PUBLIC_BASE_URL when that is set, else root-relative. Cacheable for METADATA_CACHE_MAX_AGE_SECONDS.
    """
    state = state_of(request)
    found = await _find(state, artwork_id)
    artwork = found.artwork
    response.headers["Cache-Control"] = f"public, max-age={state.settings.metadata_cache_max_age_seconds}"
    sizes = [
        RenditionInfo(
            size=r.size,
            format=r.format,
            url=_public_url(state, r),
            width=r.width,
            height=r.height,
            bytes=r.bytes,
            content_type=r.content_type,
            etag=r.etag,
        )
        for r in artwork.renditions
    ]
    return ArtworkMetadata(
        artwork_id=artwork.id,
        content_type=artwork.content_type,
        content_id=artwork.content_id,
        image_type=artwork.image_type,
        language=artwork.language,
        score=artwork.score,
        is_primary=found.is_primary,
        source_url=artwork.source_url,
        status=artwork.status,
        failure_cause=artwork.failure_cause,
        processed_at=artwork.processed_at,
        source_width=artwork.source_width,
        source_height=artwork.source_height,
        source_bytes=artwork.source_bytes,
        sizes=sizes,
        crops={
            name: CropWindowInfo(**window)
            for name, window in (artwork.crop_windows or {}).items()
            if name in artwork.sizes
        },
        stale=artwork.stale,
        stale_since=artwork.stale_since if artwork.stale else None,
        placeholders=_placeholders(artwork.placeholders),
    )


def _placeholders(found: StoredPlaceholders | None) -> Placeholders | None:
    if found is None:
        return None
    return Placeholders(
        thumbhash=found.thumbhash, blurhash=found.blurhash, dominant_color=found.dominant_color
    )


def _public_url(state: ServingState, rendition: RenditionRecord) -> str:
    if state.settings.cdn_base_url:
        return state.store.url(rendition.bucket, rendition.storage_key)
    return public_url(state.settings.public_base_url, rendition.pinned_path)


async def get_artwork_image(
    request: Request,
    artwork_id: ArtworkId,
    size: SizePath,
    format: Annotated[
        ImageFormat | None,
        Query(description="Pin one stored format; without it the format follows `Accept`."),
    ] = None,
    v: Version = None,
) -> Response:
    """One size of one specific artwork (not only an item's primary one): the URLs the metadata lists."""
    state = state_of(request)
    checked = checked_size(size, state.settings.crop_names)
    return await artwork_image(request, state, artwork_id, checked, format.value if format else None, v)


async def artwork_image(
    request: Request,
    state: ServingState,
    artwork_id: int,
    size: str,
    pinned_format: str | None,
    v: str | None,
) -> Response:
    """The answer of `get_artwork_image` for valid parameters: the route's and `serving.fast_path`'s."""
    found = await _find(state, artwork_id)
    return await deliver(
        request,
        found.artwork,
        ImageRequest(size=size, pinned_format=pinned_format, version=v),
        settings=state.settings,
        store=state.store,
        byte_cache=state.byte_cache,
    )


_PATH = "/{artwork_id}/{size}"
router.get(_PATH, responses=IMAGE_RESPONSES, response_class=Response)(get_artwork_image)
router.head(
    _PATH, responses=IMAGE_RESPONSES, response_class=Response, summary="Artwork image headers only (HEAD)"
)(get_artwork_image)
