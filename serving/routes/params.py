"""Path and query parameters shared by several routes, with their validation and documentation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from serving.conditional import VERSION_PATTERN
from serving.schemas import ContentType, ImageType, Size

# Catalog ids are BIGINT: anything outside 0 .. 2**63-1 cannot name a row.
MAX_ID = 2**63 - 1

ContentTypePath = Annotated[ContentType, Path(description="Kind of content item.")]
ImageTypePath = Annotated[ImageType, Path(description="Kind of artwork.")]
SizePath = Annotated[
    Size,
    Path(
        description="`original` (source dimensions), `large` (fits 1920x1080), `medium` (1280x720), "
        "`small` (640x360) or `thumbnail` (300x169); never upscaled."
    ),
]
ContentId = Annotated[int, Path(ge=0, le=MAX_ID, description="TVDB id of the content item.")]
ArtworkId = Annotated[int, Path(ge=0, le=MAX_ID, description="TVDB artwork id.")]
Version = Annotated[
    str | None,
    Query(
        pattern=VERSION_PATTERN,
        description="Content version from the artwork metadata. When it matches the stored bytes the "
        "response is cacheable for a year (`immutable`); otherwise for IMAGE_CACHE_MAX_AGE_SECONDS.",
    ),
]
