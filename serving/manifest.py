"""The responsive manifest of one stored artwork: every size and format with its URL and dimensions,
a ready `srcset` per format, a suggested `sizes`, the placeholders and the source's aspect ratio.

A pure function of the catalog's record (the renditions' width, height and bytes are recorded when
they are stored) and the registry: it reads no storage, so a manifest costs what a metadata lookup
costs. Fit-in sizes make the `srcset`; crops have another aspect ratio, so they are listed by name
beside it, never mixed into it.
"""

from __future__ import annotations

from collections.abc import Callable

from serving.negotiation import EXPLICIT_ONLY, MIME_BY_FORMAT, SERVER_PREFERENCE
from serving.queries import ArtworkRecord, RenditionRecord
from serving.schemas import (
    ImageManifest,
    ManifestCrop,
    ManifestFallback,
    ManifestFormat,
    ManifestImage,
    Placeholders,
)
from tvdb_images.registry import FIT_INSIDE, SIZE_BY_NAME

SUGGESTED_SIZES = "100vw"
# The `<img src>` a browser loads when it takes no `<source>`: at most as wide as the `medium` box,
# enough for most layouts, never the whole original.
_MEDIUM_BOX = SIZE_BY_NAME["medium"].box
FALLBACK_MAX_WIDTH = _MEDIUM_BOX[0] if _MEDIUM_BOX else 1 << 31


def is_fit_inside(size: str) -> bool:
    """A built-in size (the source's aspect ratio), as opposed to a crop (its box's)."""
    row = SIZE_BY_NAME.get(size)
    return row is not None and row.fit == FIT_INSIDE


def srcset(images: list[ManifestImage]) -> str:
    """`URL 300w, URL 640w, ...`: one candidate per distinct width, narrowest first. Of sizes equally
    wide (a source smaller than a box gives that box its own dimensions) the smaller size is kept,
    since a `srcset` may not list one width twice."""
    chosen: dict[int, ManifestImage] = {}
    for image in images:  # largest size first: the smaller size of a width is written last
        chosen[image.width] = image
    return ", ".join(f"{chosen[width].url} {width}w" for width in sorted(chosen))


def build_manifest(artwork: ArtworkRecord, url_of: Callable[[RenditionRecord], str]) -> ImageManifest:
    """The manifest of an artwork that has renditions; `url_of` gives each rendition's public URL."""
    formats = sorted({r.format for r in artwork.renditions}, key=_format_rank)
    by_format: dict[str, list[ManifestImage]] = {name: [] for name in formats}
    crops: dict[str, list[ManifestCrop]] = {}
    for rendition in artwork.renditions:  # sizes largest first, then crops by name (the record's order)
        if is_fit_inside(rendition.size):
            by_format[rendition.format].append(_image(rendition, url_of))
        else:
            crops.setdefault(rendition.size, []).append(_crop(rendition, url_of))
    for entries in crops.values():
        entries.sort(key=lambda crop: _format_rank(crop.format))
    width, height = _source_dimensions(artwork)
    return ImageManifest(
        artwork_id=artwork.id,
        content_type=artwork.content_type,
        content_id=artwork.content_id,
        image_type=artwork.image_type,
        width=width,
        height=height,
        aspect_ratio=round(width / height, 4) if height else 0.0,
        formats=[
            ManifestFormat(format=name, type=_mime(name), srcset=srcset(images), images=images)
            for name, images in by_format.items()
            if images
        ],
        sizes=SUGGESTED_SIZES,
        fallback=_fallback(by_format),
        crops=crops,
        placeholders=(
            Placeholders(
                thumbhash=artwork.placeholders.thumbhash,
                blurhash=artwork.placeholders.blurhash,
                dominant_color=artwork.placeholders.dominant_color,
            )
            if artwork.placeholders is not None
            else None
        ),
        stale=artwork.stale,
    )


def _image(rendition: RenditionRecord, url_of: Callable[[RenditionRecord], str]) -> ManifestImage:
    return ManifestImage(
        size=rendition.size,
        url=url_of(rendition),
        width=rendition.width,
        height=rendition.height,
        bytes=rendition.bytes,
    )


def _crop(rendition: RenditionRecord, url_of: Callable[[RenditionRecord], str]) -> ManifestCrop:
    return ManifestCrop(
        **_image(rendition, url_of).model_dump(), format=rendition.format, type=_mime(rendition.format)
    )


def _fallback(by_format: dict[str, list[ManifestImage]]) -> ManifestFallback | None:
    """The widest image at most FALLBACK_MAX_WIDTH wide (else the narrowest), in the first stored
    format every browser decodes (AVIF only when nothing else is stored)."""
    stored = [name for name, images in by_format.items() if images]
    if not stored:
        return None
    universal = [name for name in stored if name not in EXPLICIT_ONLY]
    name = (universal or stored)[0]
    images = by_format[name]
    fitting = [image for image in images if image.width <= FALLBACK_MAX_WIDTH]
    image = max(fitting, key=lambda i: i.width) if fitting else min(images, key=lambda i: i.width)
    return ManifestFallback(**image.model_dump(), format=name, type=_mime(name))


def _source_dimensions(artwork: ArtworkRecord) -> tuple[int, int]:
    """The upright source's dimensions: its `original` rendition's (EXIF orientation applied), else the
    widest fit-in rendition's, else what the catalog recorded of the source."""
    fit_in = [r for r in artwork.renditions if is_fit_inside(r.size)]
    original = [r for r in fit_in if r.size == "original"]
    if original or fit_in:
        widest = max(original or fit_in, key=lambda r: r.width)
        return widest.width, widest.height
    return artwork.source_width or 0, artwork.source_height or 0


def _format_rank(name: str) -> int:
    """The registry's order, which `<picture>` needs too: AVIF, WebP, then mirrored sources."""
    return SERVER_PREFERENCE.index(name) if name in SERVER_PREFERENCE else len(SERVER_PREFERENCE)


def _mime(name: str) -> str:
    return MIME_BY_FORMAT.get(name, f"image/{name}")
