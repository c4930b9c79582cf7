"""The one registry of image formats and rendition sizes; every other module derives from it.

Adding a format or a size is adding a row here (docs/architecture.md, "Formats and sizes"): storage
keys and the MIME types objects are stored with, the IMAGE_FORMAT choices, validation of sources,
encoding, `Accept` negotiation, the recount and the serving API's enums all follow. This module sits at
the bottom of the project: it imports nothing from it and nothing heavy (no Pillow, only Pillow's
format and option names as data), because the serving API imports it and must start fast.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import NamedTuple

# The rows are NamedTuples rather than dataclasses: three frozen dataclasses cost the serving API's
# import about 3 ms of CPU (code generated and compiled per class), NamedTuples about 0.5 ms.


class Encoding(NamedTuple):
    """How Pillow writes an output format, with no metadata at all (`imaging.encode` applies it)."""

    pillow_format: str  # Pillow's `save()` format name
    effort_setting: str  # the `RenderSettings` field that trades encoding time for bytes
    effort_option: str  # the `save()` option that field sets
    effort_tag: str  # its letter in the render settings signature ("webp-q85-m4-v2")
    modes: frozenset[str]  # working pixel modes saved as they are; others become RGB (LA: RGBA)
    options: tuple[tuple[str, bytes | int | str], ...] = ()  # fixed `save()` options


class ImageFormat(NamedTuple):
    """One image format: what it is called everywhere, and what the project does with it."""

    name: str  # the name in the catalog, the settings, storage statistics and the API
    label: str  # how people write it, in messages
    mime: str
    extension: str  # of its storage keys
    pillow_formats: tuple[str, ...]  # Pillow's names for it when decoding (MPO: a JPEG with extra pictures)
    source: bool  # accepted as a downloaded source (and then stored, and served when mirrored, as it is)
    encoding: Encoding | None = None  # set for the formats renditions are rendered to
    explicit_only: bool = False  # `Accept` must name its MIME type: wildcards promise nothing for it

    @property
    def output(self) -> bool:
        return self.encoding is not None


# Ordered by the serving API's preference among formats a client accepts equally (without byte counts
# to compare): AVIF, then WebP, then formats stored only as mirrored sources. The OpenAPI enum of
# formats lists them in this order too.
FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat(
        "avif",
        "AVIF",
        "image/avif",
        "avif",
        ("AVIF",),
        source=True,
        # AVIF defaults to copying the source's ICC profile; the empty values keep metadata out. It
        # keeps greyscale as monochrome (4:0:0), which is smaller.
        encoding=Encoding(
            "AVIF",
            "avif_speed",
            "speed",
            "s",
            frozenset({"RGB", "RGBA", "L"}),
            options=(("icc_profile", b""), ("exif", b""), ("xmp", b"")),
        ),
        # Clients that predate AVIF send `*/*` and `image/*` too; browsers that decode it name it.
        explicit_only=True,
    ),
    ImageFormat(
        "webp",
        "WebP",
        "image/webp",
        "webp",
        ("WEBP",),
        source=True,
        encoding=Encoding("WEBP", "webp_method", "method", "m", frozenset({"RGB", "RGBA"})),
    ),
    ImageFormat("jpeg", "JPEG", "image/jpeg", "jpg", ("JPEG", "MPO"), source=True),
    ImageFormat("png", "PNG", "image/png", "png", ("PNG",), source=True),
    ImageFormat("gif", "GIF", "image/gif", "gif", ("GIF",), source=True),
)

# Every current browser decodes it: IMAGE_FORMAT's default, and what the API sends when a request's
# `Accept` allows nothing that is stored.
DEFAULT_OUTPUT_FORMAT = "webp"

FORMAT_BY_NAME = MappingProxyType({f.name: f for f in FORMATS})
FORMAT_BY_EXTENSION = MappingProxyType({f.extension: f for f in FORMATS})
SOURCE_FORMATS = MappingProxyType({f.name: f for f in FORMATS if f.source})
OUTPUT_FORMATS = MappingProxyType({f.name: f for f in FORMATS if f.output})
OUTPUT_ENCODINGS = MappingProxyType({f.name: f.encoding for f in FORMATS if f.encoding is not None})
# IMAGE_FORMAT's choices, its default first (the order its error message lists them in).
OUTPUT_FORMAT_NAMES: tuple[str, ...] = (
    DEFAULT_OUTPUT_FORMAT,
    *(name for name in OUTPUT_FORMATS if name != DEFAULT_OUTPUT_FORMAT),
)

# How a rendition's box is filled. "inside": the largest size with the source's aspect ratio that fits
# the box, never upscaled (`imaging.sizes.fit_inside`). "crop": the box filled exactly by a window of
# the source placed on its content (`imaging.crop`), never upscaled: a source smaller than the box
# gives the largest window of the box's aspect ratio at the source's own scale.
FIT_INSIDE = "inside"
FIT_CROP = "crop"
FITS: frozenset[str] = frozenset({FIT_INSIDE, FIT_CROP})


class RenditionSize(NamedTuple):
    """One size every artwork is rendered to; its name is part of the storage key and the API."""

    name: str
    box: tuple[int, int] | None  # None: the source's own dimensions (re-encoded, upright, no metadata)
    fit: str = FIT_INSIDE


# Largest first: rendering cascades down this order and reuses identical outputs; the API lists an
# artwork's sizes in this order.
RENDITION_SIZES: tuple[RenditionSize, ...] = (
    RenditionSize("original", None),
    RenditionSize("large", (1920, 1080)),
    RenditionSize("medium", (1280, 720)),
    RenditionSize("small", (640, 360)),
    RenditionSize("thumbnail", (300, 169)),
)

for _size in RENDITION_SIZES:
    if _size.fit not in FITS:
        raise ValueError(f"size {_size.name!r}: fit must be one of {sorted(FITS)}, got {_size.fit!r}")

SIZE_NAMES: tuple[str, ...] = tuple(size.name for size in RENDITION_SIZES)
SIZE_BY_NAME = MappingProxyType({size.name: size for size in RENDITION_SIZES})

# Crop renditions are deployment-specific rows (CROP_RENDITIONS, e.g. "card:342x513,avatar:300x300"):
# `Settings.rendition_sizes` is this table with them appended, built once at load. A crop name is a
# storage key's file name and an API path segment, and fits the catalog's size column (16).
CROP_NAME_PATTERN = r"[a-z][a-z0-9_]{0,15}"
# Path segments the API routes beside `{size}` (`.../{image_type}/manifest`): no crop may take them.
RESERVED_CROP_NAMES: frozenset[str] = frozenset({"manifest"})
CROP_BOX_MIN = 16
CROP_BOX_MAX = 4096
_CROP_ITEM = re.compile(rf"({CROP_NAME_PATTERN}):([0-9]{{1,5}})x([0-9]{{1,5}})")


def parse_crop_renditions(text: str) -> tuple[RenditionSize, ...]:
    """The crop rows of a CROP_RENDITIONS value ("name:WxH,..."); ValueError naming the bad item."""
    rows: list[RenditionSize] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _CROP_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not name:WIDTHxHEIGHT (name: {CROP_NAME_PATTERN})")
        name, width, height = match.group(1), int(match.group(2)), int(match.group(3))
        if name in SIZE_BY_NAME:
            raise ValueError(f"crop {name!r} has the name of a built-in size ({', '.join(SIZE_NAMES)})")
        if name in RESERVED_CROP_NAMES:
            raise ValueError(f"crop {name!r} is reserved: the API serves the image manifest under that name")
        if any(row.name == name for row in rows):
            raise ValueError(f"crop {name!r} is given twice")
        if not (CROP_BOX_MIN <= width <= CROP_BOX_MAX and CROP_BOX_MIN <= height <= CROP_BOX_MAX):
            raise ValueError(
                f"crop {name!r}: each side must be {CROP_BOX_MIN}..{CROP_BOX_MAX}, got {width}x{height}"
            )
        rows.append(RenditionSize(name, (width, height), FIT_CROP))
    return tuple(rows)


def size_table(crops: tuple[RenditionSize, ...] = ()) -> tuple[RenditionSize, ...]:
    """The built-in sizes (largest first), then a deployment's crop rows in their configured order."""
    return RENDITION_SIZES + tuple(crops)
