"""`GET /api/v1/images/stats/popular`: the most viewed artwork over the last days, with view counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from serving.dependencies import CatalogSession, State
from serving.errors import error_responses
from serving.links import public_url
from serving.schemas import ContentType, ImageType
from tvdb_images.catalog.view_stats import popular_artwork

router = APIRouter(prefix="/api/v1/images/stats", tags=["stats"])

POPULAR_CACHE_SECONDS = 60
MAX_DAYS = 366
MAX_LIMIT = 100


class PopularItem(BaseModel):
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    views: int = Field(description="Views in the window, every size together.")
    views_by_size: dict[str, int] = Field(description="Views in the window by size.")
    url: str = Field(description="The artwork's metadata URL (absolute under PUBLIC_BASE_URL).")


class PopularResponse(BaseModel):
    since: date = Field(description="First UTC day counted.")
    until: date = Field(description="Last UTC day counted (today, so far).")
    days: int
    content_type: str | None
    image_type: str | None
    items: list[PopularItem] = Field(description="Most views first, then lowest artwork id.")
    flush_interval_seconds: float = Field(
        description="Views reach the counts at most this late (per worker, VIEW_FLUSH_SECONDS)."
    )
    computed_at: datetime


@router.get("/popular", response_model=PopularResponse, responses=error_responses(422, 503))
def get_popular(
    response: Response,
    state: State,
    session: CatalogSession,
    content_type: Annotated[ContentType | None, Query(description="Only this kind of content.")] = None,
    image_type: Annotated[ImageType | None, Query(description="Only this kind of artwork.")] = None,
    days: Annotated[
        int, Query(ge=1, le=MAX_DAYS, description="UTC days counted: today and the days before it.")
    ] = 7,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many artworks to list.")] = 20,
) -> PopularResponse:
    """The most viewed artwork: views are GETs of its images answered 200, 304 (a client's cached
    copy shown again) or 307 (sent to the CDN), counted by every worker and flushed to the catalog
    every VIEW_FLUSH_SECONDS. Artwork removed from the catalog is left out. Cacheable for 60 s."""
    until = datetime.now(UTC).date()
    since = until - timedelta(days=days - 1)
    items = popular_artwork(
        session,
        since=since,
        until=until,
        content_type=content_type.value if content_type else None,
        image_type=image_type.value if image_type else None,
        limit=limit,
    )
    response.headers["Cache-Control"] = f"public, max-age={POPULAR_CACHE_SECONDS}"
    return PopularResponse(
        since=since,
        until=until,
        days=days,
        content_type=content_type.value if content_type else None,
        image_type=image_type.value if image_type else None,
        items=[
            PopularItem(
                artwork_id=item.artwork_id,
                content_type=item.content_type,
                content_id=item.content_id,
                image_type=item.image_type,
                views=item.views,
                views_by_size=item.by_size,
                url=public_url(state.settings.public_base_url, f"/api/v1/images/artwork/{item.artwork_id}"),
            )
            for item in items
        ],
        flush_interval_seconds=state.settings.view_flush_seconds,
        computed_at=datetime.now(UTC),
    )
