"""Decide whether downloaded bytes are an image the pipeline will render, without decoding pixels.

Checks run cheapest first, and every check that protects memory (size, pixels, frames) runs before
anything allocates pixel buffers: byte count, magic bytes, a structural walk of the container
(header dimensions, frame count, cut-off data), then Pillow's lazy header read, which must agree
with the sniffed format. Pillow's own decompression-bomb error is mapped to "too_many_pixels" as a
backstop; the pixel limit itself is checked here so that Pillow's global MAX_IMAGE_PIXELS is never
touched. (If an operator sets max_pixels above Pillow's warning threshold, Pillow still emits its
DecompressionBombWarning for such images; above twice that threshold Pillow refuses them.)
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from tvdb_images.registry import SOURCE_FORMATS

from .errors import (
    CORRUPT,
    EMPTY,
    METADATA_TOO_LARGE,
    NOT_AN_IMAGE,
    TOO_LARGE,
    TOO_MANY_FRAMES,
    TOO_MANY_PIXELS,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    ImageRejected,
)
from .sniff import describe_foreign, signature_prefix, sniff_format
from .structure import read_container

__all__ = ["SourceInfo", "ValidationLimits", "open_source", "sniff_format", "validate_source"]

_ACCEPTED = ", ".join(f.label for f in SOURCE_FORMATS.values())


@dataclass(frozen=True)
class ValidationLimits:
    """Upper bounds for one source image; the defaults suit TVDB artwork (4K fanart is ~8 MP)."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_frames: int = 100

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"ValidationLimits.{name} must be positive")


@dataclass(frozen=True)
class SourceInfo:
    """What a valid source is, as stored (dimensions before EXIF orientation is applied)."""

    format: str  # a name of the registry's SOURCE_FORMATS: "jpeg", "png", ...
    mime: str  # its MIME type
    extension: str  # its storage key extension
    width: int
    height: int
    frames: int
    byte_size: int


def validate_source(data: bytes, limits: ValidationLimits) -> SourceInfo:
    """Return what the source is, or raise ImageRejected with the reason it is refused."""
    info, image = open_source(data, limits)
    image.close()
    return info


def open_source(data: bytes, limits: ValidationLimits) -> tuple[SourceInfo, Image.Image]:
    """Validate and return Pillow's lazily opened image (header read, no pixels decoded).

    Rendering continues from the returned image so the header is parsed once; the caller owns it.
    """
    size = len(data)
    if size == 0:
        raise ImageRejected(EMPTY, "no bytes")
    if size > limits.max_bytes:
        raise ImageRejected(TOO_LARGE, f"{size:,} bytes exceeds the limit of {limits.max_bytes:,}")

    fmt = sniff_format(data)
    if fmt is None:
        raise _foreign(data)

    container = read_container(fmt, data)
    if container.width is not None and container.height is not None:
        _check_pixels(container.width, container.height, limits)
    if container.frames is not None:
        _check_frames(container.frames, limits)
    if container.truncated is not None:
        raise ImageRejected(TRUNCATED, container.truncated)

    image = _pillow_open(fmt, data)
    try:
        info = _describe(fmt, data, image, limits)
    except BaseException:
        image.close()
        raise
    return info, image


def _describe(fmt: str, data: bytes, image: Image.Image, limits: ValidationLimits) -> SourceInfo:
    known = SOURCE_FORMATS[fmt]
    if image.format not in known.pillow_formats:
        raise ImageRejected(CORRUPT, f"bytes start like {fmt.upper()} but decode as {image.format}")
    width, height = image.size
    _check_pixels(width, height, limits)
    try:
        # GIF has no frame count in its header, so Pillow walks the frame headers (no pixel
        # decoding); safe now that the pixel limit has passed. Others read the container's count.
        frames = int(getattr(image, "n_frames", 1))
    except Exception as exc:  # Pillow raises assorted types for malformed frame data
        raise decode_failure(fmt, exc) from exc
    _check_frames(frames, limits)
    return SourceInfo(
        format=fmt,
        mime=known.mime,
        extension=known.extension,
        width=width,
        height=height,
        frames=frames,
        byte_size=len(data),
    )


def _pillow_open(fmt: str, data: bytes) -> Image.Image:
    try:
        # Restricting Pillow to the sniffed format keeps other parsers away from untrusted bytes.
        return Image.open(io.BytesIO(data), formats=SOURCE_FORMATS[fmt].pillow_formats)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(TOO_MANY_PIXELS, str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(CORRUPT, f"{fmt.upper()} header cannot be parsed") from exc
    except Exception as exc:  # Pillow raises assorted types for malformed headers
        raise decode_failure(fmt, exc) from exc


def decode_failure(fmt: str, exc: BaseException) -> ImageRejected:
    """Map an error Pillow raised while reading a validated source to "truncated" or "corrupt"."""
    if isinstance(exc, Image.DecompressionBombError):
        return ImageRejected(TOO_MANY_PIXELS, str(exc))
    message = str(exc) or type(exc).__name__
    if "MAX_TEXT_CHUNK" in message or "MAX_TEXT_MEMORY" in message:
        return ImageRejected(METADATA_TOO_LARGE, f"{fmt.upper()} text chunk refused: {message}")
    cause = TRUNCATED if "truncated" in message.lower() else CORRUPT
    return ImageRejected(cause, f"{fmt.upper()} decoding failed: {message}")


def _check_pixels(width: int, height: int, limits: ValidationLimits) -> None:
    if width * height > limits.max_pixels:
        raise ImageRejected(
            TOO_MANY_PIXELS,
            f"{width}x{height} is {width * height:,} pixels,"
            f" over the MAX_IMAGE_PIXELS limit of {limits.max_pixels:,}",
        )


def _check_frames(frames: int, limits: ValidationLimits) -> None:
    if frames > limits.max_frames:
        raise ImageRejected(TOO_MANY_FRAMES, f"{frames} frames, over the limit of {limits.max_frames}")


def _foreign(data: bytes) -> ImageRejected:
    cut = signature_prefix(data)
    if cut is not None:
        return ImageRejected(TRUNCATED, f"{len(data)} bytes, ending inside the {cut.upper()} signature")
    found = describe_foreign(data)
    if found is not None:
        return ImageRejected(UNSUPPORTED_FORMAT, f"{found}; accepted: {_ACCEPTED}")
    return ImageRejected(NOT_AN_IMAGE, f"no known file signature (starts with {data[:8].hex(' ')})")
