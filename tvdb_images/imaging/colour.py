"""Colour management: bring pixels that carry an ICC profile into sRGB.

Renditions are written without any embedded profile, and browsers treat untagged images as sRGB.
So a source tagged with another profile (Adobe RGB, Display P3, "Generic RGB", a CMYK press
profile) has its pixels transformed to sRGB here, or its colours would shift once the profile is
stripped. Sources already in sRGB are left alone, which costs nothing. Greyscale profiles are not
applied: their tone curves are close to sRGB's and a transform would turn grey images into RGB.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageCms

_PROFILE_SPACE_FOR_MODE = {"RGB": "RGB ", "RGBA": "RGB ", "CMYK": "CMYK"}


def to_srgb(image: Image.Image) -> Image.Image:
    """`image` in sRGB: transformed through its embedded ICC profile when it has a non-sRGB one.

    CMYK always comes out RGB (through the profile when present, else Pillow's plain conversion);
    RGBA keeps its alpha channel. An unreadable or mismatched profile is ignored rather than
    refusing the image: the pixels are still valid, only their colour interpretation is lost.
    """
    icc = image.info.get("icc_profile")
    transform = _transform(icc, image.mode) if icc and image.mode in _PROFILE_SPACE_FOR_MODE else None
    if transform is not None:
        try:
            return ImageCms.applyTransform(image, transform) or image
        except (ImageCms.PyCMSError, ValueError, OSError):
            pass
    if image.mode == "CMYK":
        return image.convert("RGB")
    return image


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=32)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached transform to sRGB for this profile, or None when none is needed or possible.

    Artwork from one source tends to share a handful of profiles, and building a transform (parsing
    a CMYK profile of half a megabyte) costs far more than applying it to a thumbnail-sized image.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space
        if space != _PROFILE_SPACE_FOR_MODE[mode]:
            return None
        if mode != "CMYK" and _is_srgb(profile):
            return None
        out_mode = "RGBA" if mode == "RGBA" else "RGB"
        return ImageCms.buildTransform(profile, _srgb(), mode, out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = (profile.profile.profile_description or "").lower()
    return "srgb" in description or "61966-2" in description
