"""Encode rendition pixels in an output format of the registry, with no metadata at all.

Nothing is embedded: no EXIF (the pixels are already upright, so an orientation tag could only
rotate them a second time), no XMP, and no ICC profile (pixels are already sRGB, which is what
browsers assume for untagged images; this saves the profile's bytes in every rendition). Each
format's Pillow options are data in `tvdb_images.registry` (`Encoding`), applied here.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from tvdb_images.registry import OUTPUT_ENCODINGS, Encoding

if TYPE_CHECKING:
    from .render import RenderSettings


def encode(image: Image.Image, settings: RenderSettings) -> bytes:
    encoding = OUTPUT_ENCODINGS.get(settings.format)
    if encoding is None:
        raise ValueError(f"unsupported output format {settings.format!r}")
    buffer = io.BytesIO()
    _in_mode_of(encoding, image).save(
        buffer,
        encoding.pillow_format,
        quality=settings.quality,
        **{encoding.effort_option: getattr(settings, encoding.effort_setting)},
        **dict(encoding.options),
    )
    return buffer.getvalue()


def _in_mode_of(encoding: Encoding, image: Image.Image) -> Image.Image:
    """Working images the format cannot store as they are (greyscale for WebP) gain their channels
    here, at rendition size."""
    if image.mode in encoding.modes:
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")
