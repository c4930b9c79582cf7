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


class ManifestImage(BaseModel):
    """One stored rendition in a manifest: what a `srcset` candidate or an `<img>` needs."""

    size: str
    url: str = Field(
        description="Versioned URL of exactly these bytes: on the CDN (with `?v=`) when CDN_BASE_URL "
        "is set, else this API's pinned URL (`?format=&v=`), absolute under PUBLIC_BASE_URL."
    )
    width: int
    height: int
    bytes: int


class ManifestFormat(BaseModel):
    """One stored format: a `<source type=... srcset=...>` of a `<picture>`."""

    format: str
    type: str = Field(description="MIME type, the `<source>`'s `type` attribute.")
    srcset: str = Field(
        description="`URL 300w, URL 640w, ...`: every distinct width of the fit-in sizes, narrowest first "
        "(crops are not in it; a size as wide as a larger one is left out)."
    )
    images: list[ManifestImage] = Field(description="Every stored fit-in size of this format, largest first.")


class ManifestCrop(ManifestImage):
    format: str
    type: str


class ManifestFallback(ManifestImage):
    """The `<img src>` inside the `<picture>`: what a browser that takes no `<source>` loads."""

    format: str
    type: str


class ImageManifest(BaseModel):
    """Everything a client needs to build a responsive `<picture>` for one artwork, with no other call."""

    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    width: int = Field(description="Width of the upright source (the `original` size), in pixels.")
    height: int = Field(description="Height of the upright source, in pixels.")
    aspect_ratio: float = Field(description="`width / height` of the source, for CSS `aspect-ratio`.")
    formats: list[ManifestFormat] = Field(
        description="Stored formats in the order a `<picture>` should list them: AVIF, then WebP, "
        "then mirrored sources (a browser takes the first `<source>` whose `type` it decodes)."
    )
    sizes: str = Field(
        description="A suggested `sizes` attribute (`100vw`: the image spans the viewport); replace it "
        "with the width of the layout's slot."
    )
    fallback: ManifestFallback | None = Field(
        description="The `<img src>`: the widest rendition at most 1280 px wide, in WebP when stored."
    )
    crops: dict[str, list[ManifestCrop]] = Field(
        default_factory=dict,
        description="Each stored crop (CROP_RENDITIONS) by name, one entry per format in `formats` order.",
    )
    placeholders: Placeholders | None = Field(
        default=None, description="What to paint while the image loads; as in the artwork metadata."
    )
    stale: bool = Field(default=False, description="As in the artwork metadata.")


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
