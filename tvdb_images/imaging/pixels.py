"""Turn a validated, lazily opened source into upright sRGB pixels in one of four working modes.

Working modes are "L", "LA", "RGB" and "RGBA": the fewest channels that hold the image, because
resizing cost grows with channel count (greyscale resizes several times faster than RGB). The
encoder adds channels only at the end, on the small renditions. An alpha channel is kept only when
some pixel is actually transparent.
"""

from __future__ import annotations

from PIL import ExifTags, Image, ImageChops

from .colour import to_srgb
from .validate import decode_failure

# EXIF orientation -> the transpose that makes the pixels upright (the table of ImageOps.exif_transpose).
_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_GREY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def exif_orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation of an image, 1 when absent, invalid or unreadable.

    For JPEG this reads only the header. Pillow's PNG reader decodes the whole image to look for
    EXIF after the pixel data, so for other formats call it after `decode`, whose error handling
    then applies.
    """
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # malformed EXIF must not cost an otherwise valid image
        return 1
    return value if value in _TRANSPOSE_FOR_ORIENTATION else 1


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def stored_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Inverse of `upright_size` (the same swap)."""
    return upright_size(width, height, orientation)


def decode(image: Image.Image, fmt: str) -> Image.Image:
    """Decode the current (first) frame; decoder failures become ImageRejected."""
    try:
        image.load()
    except Exception as exc:  # Pillow raises assorted types for damaged pixel data
        raise decode_failure(fmt, exc) from exc
    return image


def to_working(image: Image.Image, orientation: int) -> Image.Image:
    """Decoded pixels -> upright sRGB in L, LA, RGB or RGBA, copying only when something changes."""
    image = _normalise_mode(image)
    if image.mode in ("RGB", "RGBA"):
        image = to_srgb(image)
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        image = image.transpose(transpose)
    return image


def _normalise_mode(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("RGB", "L") and "transparency" not in image.info:
        return image
    if mode == "CMYK":
        return to_srgb(image)
    if mode in _SIXTEEN_BIT_GREY:
        grey = _sixteen_bit_grey(image)
        return _drop_opaque_alpha(grey) if grey.mode == "LA" else grey
    if mode == "1":
        image = image.convert("L")
        mode = "L"
    if image.has_transparency_data:
        is_grey = mode in ("L", "LA", "La")
        image = image if mode in ("LA", "RGBA") else image.convert("LA" if is_grey else "RGBA")
        return _drop_opaque_alpha(image)
    if mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _sixteen_bit_grey(image: Image.Image) -> Image.Image:
    """16-bit greyscale -> 8-bit "L", or "LA" when a tRNS grey value marks transparent pixels.

    Pillow's own conversions clip at 255 instead of scaling 0..65535 down, and ignore a 16-bit
    transparent value, so both are done here with linear point operations.
    """
    grey = image.point(lambda v: v * (1 / 257)).convert("L")
    grey.info.pop("transparency", None)
    key = image.info.get("transparency")
    if not isinstance(key, int):
        return grey
    wide = image.convert("I")
    above = wide.point(lambda v: v - key).convert("L")  # > 0 exactly where v > key
    below = wide.point(lambda v: key - v).convert("L")  # > 0 exactly where v < key
    alpha = ImageChops.lighter(above, below).point(lambda x: 255 if x else 0)
    grey.putalpha(alpha)
    return grey


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    """Remove an alpha channel that is fully opaque (common in PNG exports), keeping one that is used."""
    low, _high = image.getchannel("A").getextrema()
    if low == 255:
        return image.convert("L" if image.mode == "LA" else "RGB")
    return image
