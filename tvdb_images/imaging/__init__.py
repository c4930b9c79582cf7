"""Pure image handling for the pipeline: validate source bytes, render sized WebP/AVIF renditions.

Bytes in, bytes out: no files, network, storage or orchestration here, so every function can run
in a worker process and be tested on its own.
"""

from .errors import (
    CAUSES,
    CORRUPT,
    EMPTY,
    NOT_AN_IMAGE,
    TOO_LARGE,
    TOO_MANY_FRAMES,
    TOO_MANY_PIXELS,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    ImageRejected,
)
from .render import (
    ENGINE_VERSION,
    SIZE_BOXES,
    RenderResult,
    RenderSettings,
    Rendition,
    fit_inside,
    render_renditions,
    render_settings_signature,
)
from .validate import SourceInfo, ValidationLimits, sniff_format, validate_source

__all__ = [
    "CAUSES",
    "CORRUPT",
    "EMPTY",
    "ENGINE_VERSION",
    "NOT_AN_IMAGE",
    "SIZE_BOXES",
    "TOO_LARGE",
    "TOO_MANY_FRAMES",
    "TOO_MANY_PIXELS",
    "TRUNCATED",
    "UNSUPPORTED_FORMAT",
    "ImageRejected",
    "RenderResult",
    "RenderSettings",
    "Rendition",
    "SourceInfo",
    "ValidationLimits",
    "fit_inside",
    "render_renditions",
    "render_settings_signature",
    "sniff_format",
    "validate_source",
]
