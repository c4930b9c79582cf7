"""Path and query parameters shared by several routes, with their validation and documentation."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator

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
_CANONICAL_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def canonical_decimal(value: object) -> object:
    """One spelling per id, so a CDN caches each image under one key: pydantic alone would also take
    `+1`, `01`, `1.0`, `1_000` and ` 1 ` for 1."""
    if isinstance(value, str) and not _CANONICAL_DECIMAL.fullmatch(value):
        raise ValueError("must be a decimal integer without sign, leading zeros, separators or spaces")
    return value


_Canonical = BeforeValidator(canonical_decimal)
ContentId = Annotated[int, _Canonical, Path(ge=0, le=MAX_ID, description="TVDB id of the content item.")]
ArtworkId = Annotated[int, _Canonical, Path(ge=0, le=MAX_ID, description="TVDB artwork id.")]
Version = Annotated[
    str | None,
    Query(
        pattern=VERSION_PATTERN,
        description="Content version from the artwork metadata. When it matches the stored bytes the "
        "response is cacheable for a year (`immutable`); otherwise for IMAGE_CACHE_MAX_AGE_SECONDS.",
    ),
]
