"""Encode rendition pixels as WebP or AVIF, with no metadata at all.

Nothing is embedded: no EXIF (the pixels are already upright, so an orientation tag could only
rotate them a second time), no XMP, and no ICC profile (pixels are already sRGB, which is what
browsers assume for untagged images; this saves the profile's bytes in every rendition).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from .render import RenderSettings


def encode(image: Image.Image, settings: RenderSettings) -> bytes:
    buffer = io.BytesIO()
    if settings.format == "webp":
        _for_webp(image).save(buffer, "WEBP", quality=settings.quality, method=settings.webp_method)
    elif settings.format == "avif":
        # AVIF defaults to copying the source's ICC profile; the empty values keep metadata out.
        _for_avif(image).save(
            buffer,
            "AVIF",
            quality=settings.quality,
            speed=settings.avif_speed,
            icc_profile=b"",
            exif=b"",
            xmp=b"",
        )
    else:
        raise ValueError(f"unsupported output format {settings.format!r}")
    return buffer.getvalue()


def _for_webp(image: Image.Image) -> Image.Image:
    """WebP stores RGB(A) only; greyscale working images gain their channels here, at rendition size."""
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")


def _for_avif(image: Image.Image) -> Image.Image:
    """AVIF keeps greyscale as monochrome (4:0:0), which is smaller; only LA needs converting."""
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")
