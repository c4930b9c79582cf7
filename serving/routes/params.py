"""Path and query parameters shared by several routes, with their validation and documentation."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from pydantic import (
    BeforeValidator,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from serving.conditional import VERSION_PATTERN
from serving.errors import ApiError
from serving.schemas import ContentType, ImageType, Size
from tvdb_images.registry import CROP_NAME_PATTERN, SIZE_NAMES

# Catalog ids are BIGINT: anything outside 0 .. 2**63-1 cannot name a row.
MAX_ID = 2**63 - 1

ContentTypePath = Annotated[ContentType, Path(description="Kind of content item.")]
ImageTypePath = Annotated[ImageType, Path(description="Kind of artwork.")]
# One of the five sizes (the `Size` enum), or a crop this deployment configures (CROP_RENDITIONS):
# the second branch admits any crop-shaped name, `checked_size` refuses (422) those not configured, and
# `document_sizes` writes this deployment's crop names into /openapi.json in place of the pattern.
CropName = Annotated[str, StringConstraints(pattern=f"^{CROP_NAME_PATTERN}$")]
_SIZES_IN_WORDS = ", ".join(f"'{name}'" for name in SIZE_NAMES[:-1]) + f" or '{SIZE_NAMES[-1]}'"


def _one_size_error(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """One error for the parameter, not one per branch of the union (whose locations would name the
    branches instead of `size`)."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("size", f"Input should be {_SIZES_IN_WORDS}, or a crop's name") from None


SizePath = Annotated[
    Size | CropName,
    WrapValidator(_one_size_error),
    Path(
        description="`original` (source dimensions), `large` (fits 1920x1080), `medium` (1280x720), "
        "`small` (640x360) or `thumbnail` (300x169), never upscaled; or a crop this deployment "
        "configures (CROP_RENDITIONS: the exact box, placed on the image's content).",
    ),
]


def checked_size(value: Size | str, crops: tuple[str, ...]) -> str:
    """The size's name if it is one of the five sizes or a configured crop; otherwise 422 naming the
    choices."""
    size = str(value)
    if size in SIZE_NAMES or size in crops:
        return size
    choices = ", ".join([*SIZE_NAMES, *crops])
    message = f"must be one of {choices}"
    raise ApiError(
        422,
        "invalid_parameter",
        f"invalid path parameter 'size': {message}",
        parameter="size",
        details={"errors": [{"in": "path", "name": "size", "message": message}]},
    )


def document_sizes(app: FastAPI, crops: tuple[str, ...]) -> None:
    """Document every `size` path parameter as what this deployment serves: the `Size` enum, or one
    of its crops (an enum of their names); without crops, the `Size` enum alone."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("in") == "path" and parameter.get("name") == "size":
                            parameter["schema"] = _size_schema(crops)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def _size_schema(crops: tuple[str, ...]) -> dict[str, Any]:
    sizes = {"$ref": "#/components/schemas/Size"}
    if not crops:
        return sizes
    return {"anyOf": [sizes, {"type": "string", "enum": list(crops), "title": "Crop"}], "title": "Size"}


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
