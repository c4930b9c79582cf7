"""Names, MIME types and file extensions of the formats the pipeline reads and writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FormatInfo:
    name: str
    mime: str
    extension: str
    # Pillow's format names for this format; MPO is a JPEG carrying extra pictures (camera files).
    pillow_formats: tuple[str, ...]


SOURCE_FORMATS: dict[str, FormatInfo] = {
    "jpeg": FormatInfo("jpeg", "image/jpeg", "jpg", ("JPEG", "MPO")),
    "png": FormatInfo("png", "image/png", "png", ("PNG",)),
    "webp": FormatInfo("webp", "image/webp", "webp", ("WEBP",)),
    "gif": FormatInfo("gif", "image/gif", "gif", ("GIF",)),
    "avif": FormatInfo("avif", "image/avif", "avif", ("AVIF",)),
}

OUTPUT_FORMATS: dict[str, FormatInfo] = {name: SOURCE_FORMATS[name] for name in ("webp", "avif")}
