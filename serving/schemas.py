"""Request enums and response models: what OpenAPI shows clients, and the one error shape of every failure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tvdb_images.config import CONTENT_TYPES, IMAGE_TYPES
from tvdb_images.registry import FORMATS, SIZE_NAMES

# Enums built from the project's own tuples, so the API accepts exactly what the layout can store.
ContentType = StrEnum("ContentType", {name: name for name in CONTENT_TYPES})  # type: ignore[misc]  # members from a tuple: mypy needs literals
ImageType = StrEnum("ImageType", {name: name for name in IMAGE_TYPES})  # type: ignore[misc]  # members from a tuple: mypy needs literals
Size = StrEnum("Size", {name: name for name in SIZE_NAMES})  # type: ignore[misc]  # members from a tuple: mypy needs literals
ImageFormat = StrEnum("ImageFormat", {f.name.upper(): f.name for f in FORMATS})  # type: ignore[misc]  # members from a tuple: mypy needs literals
ImageFormat.__doc__ = (
    "Formats a stored image can have: renditions (AVIF, WebP) and mirrored sources (the rest)."
)


class ErrorBody(BaseModel):
    """Every error the API returns has this shape, whatever the status code."""

    status: int = Field(description="The HTTP status code, repeated for clients that log bodies only.")
    code: str = Field(description="Stable machine-readable error code, e.g. `image_not_stored`.")
    message: str = Field(description="What went wrong, for a human.")
    parameter: str | None = Field(default=None, description="The request parameter that was refused.")
    details: dict[str, Any] | None = Field(default=None, description="Extra facts about this error.")
    request_id: str | None = Field(default=None, description="Also sent as `X-Request-ID` and logged.")


class RenditionInfo(BaseModel):
    size: str
    format: str
    url: str = Field(description="Public URL: the CDN's when CDN_BASE_URL is set, else this API's.")
    width: int
    height: int
    bytes: int
    content_type: str
    etag: str = Field(description="Strong ETag the image endpoints send for these bytes.")


class CropWindowInfo(BaseModel):
    """Where a crop rendition sits in the source: upright source pixels (EXIF orientation applied)."""

    x: int
    y: int
    width: int
    height: int


class Placeholders(BaseModel):
    """What to paint while the image loads, computed from the stored renditions' own pixels."""

    thumbhash: str = Field(
        description="ThumbHash, base64 (about 25 bytes): keeps alpha and the aspect ratio "
        "(decode with thumbhash's `thumbHashToDataURL`)."
    )
    blurhash: str = Field(description="BlurHash (base83), what Jellyfin's clients decode; no alpha.")
    dominant_color: str = Field(
        pattern=r"^#[0-9a-f]{6}$", description="The image's dominant colour, `#rrggbb`: a background fill."
    )


class ArtworkMetadata(BaseModel):
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    language: str | None
    score: int | None
    is_primary: bool = Field(
        description="True when this is the artwork the content item's image URL serves for its type."
    )
    source_url: str = Field(description="Where TVDB serves the artwork.")
    status: str = Field(description="pending, downloaded, processed, failed or gone.")
    failure_cause: str | None
    processed_at: datetime | None
    source_width: int | None
    source_height: int | None
    source_bytes: int | None
    sizes: list[RenditionInfo] = Field(
        description="Every stored size and format: the built-in sizes largest first, then the crops by name."
    )
    crops: dict[str, CropWindowInfo] = Field(
        default_factory=dict,
        description="Each stored crop rendition (CROP_RENDITIONS) by name: the window of the source it "
        "shows, resized to the crop's box (or not, when the source is smaller than the box).",
    )
    stale: bool = Field(
        default=False,
        description=(
            "True when the stored image is the last good one of an earlier source: the source changed "
            "(new URL or new bytes) and is pending or was refused (`failure_cause`); STALE_IMAGE_POLICY."
        ),
    )
    stale_since: datetime | None = Field(default=None, description="When the stored image became stale.")
    placeholders: Placeholders | None = Field(
        default=None,
        description="Null until the artwork is rendered with placeholders (`rerender_images` fills them "
        "in), and for sources mirrored unchanged (ENABLE_IMAGE_OPTIMIZATION=false).",
    )


class RenditionCount(BaseModel):
    content_type: str
    size: str
    format: str
    objects: int
    bytes: int


class OriginalCount(BaseModel):
    content_type: str
    objects: int
    bytes: int


class GroupTotal(BaseModel):
    objects: int
    bytes: int
    size_mb: float


class StatusCount(BaseModel):
    content_type: str
    status: str
    artworks: int


class StorageStatsResponse(BaseModel):
    total_objects: int
    total_size_mb: float
    total_bytes: int
    by_content_type: dict[str, GroupTotal] = Field(description="Renditions and originals per content type.")
    by_size: dict[str, GroupTotal] = Field(description="Renditions per size; unchanged sources as `source`.")
    renditions: list[RenditionCount]
    originals: list[OriginalCount]
    artwork_by_status: list[StatusCount] = Field(description="From the catalog, also when recounting.")
    failures_by_cause: dict[str, int]
    shared_renditions: int = Field(
        default=0, description="Rendition rows sharing an object an identical source already stored."
    )
    bytes_saved_by_deduplication: int = Field(
        default=0, description="Bytes those shared renditions would take if each were stored again."
    )
    near_shared_renditions: int = Field(
        default=0,
        description="Of the shared renditions, those serving a near-duplicate cluster's best member "
        "(DEDUP_NEAR_DUPLICATES).",
    )
    bytes_saved_by_near_deduplication: int = Field(
        default=0, description="Of the bytes saved by deduplication, those saved by near-duplicates."
    )
    counted_from: str = Field(description="`catalog`, or `storage` for a recount.")
    truncated: bool = Field(default=False, description="A recount stopped at its object limit.")
    computed_at: datetime = Field(description="When these figures were computed.")
    unrecognized_objects: int = Field(
        default=0, description="Recount: objects whose key is not a layout key."
    )
    elapsed_ms: float


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELING = "canceling"
    CANCELED = "canceled"


class TaskAccepted(BaseModel):
    task_id: str = Field(description="The Dagster run id.")
    job: str
    status: TaskStatus
    dagster_status: str
    status_url: str


class TaskInfo(BaseModel):
    task_id: str
    job: str
    status: TaskStatus
    dagster_status: str
    finished: bool
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class Health(BaseModel):
    status: str


class CheckResult(BaseModel):
    ok: bool
    elapsed_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: str = Field(description="`ready` or `not_ready`.")
    checks: dict[str, CheckResult]
