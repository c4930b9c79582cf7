"""Render every rendition of one source image: validate, decode once, resize in cascade, encode.

`render_renditions` is a plain top-level function taking and returning frozen dataclasses, so it
can run in a `ProcessPoolExecutor` worker. It does no I/O.

Animated sources (GIF, WebP, APNG, AVIF sequences) are rendered from their first frame only: the
renditions are still images.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .encode import encode
from .formats import OUTPUT_FORMATS
from .pixels import decode, exif_orientation, stored_size, to_working, upright_size
from .resize import Cascade
from .sizes import SIZE_BOXES, fit_inside
from .validate import SourceInfo, ValidationLimits, open_source

__all__ = [
    "ENGINE_VERSION",
    "SIZE_BOXES",
    "RenderResult",
    "RenderSettings",
    "Rendition",
    "fit_inside",
    "render_renditions",
    "render_settings_signature",
]

# Bump whenever a change here (resampling, colour handling, encoder options) changes output bytes
# for the same settings; it is part of the settings signature stored with each rendition.
ENGINE_VERSION = 1

# JPEG sources may be decoded at 1/2, 1/4 or 1/8 scale when the full resolution is not wanted;
# the decoded image stays at least this many times the largest rendition, as Image.thumbnail does.
_DRAFT_GAP = 2
_DRAFTABLE = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class RenderSettings:
    format: str = "webp"  # "webp" | "avif"
    quality: int = 85
    webp_method: int = 4
    avif_speed: int = 8
    sizes: tuple[str, ...] = tuple(SIZE_BOXES)

    def __post_init__(self) -> None:
        if self.format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {sorted(OUTPUT_FORMATS)}, got {self.format!r}")
        _check_range("quality", self.quality, 0, 100)
        _check_range("webp_method", self.webp_method, 0, 6)
        _check_range("avif_speed", self.avif_speed, 0, 10)
        sizes = tuple(self.sizes)
        unknown = [size for size in sizes if size not in SIZE_BOXES]
        if unknown or not sizes:
            raise ValueError(f"sizes must be a non-empty selection of {list(SIZE_BOXES)}, got {sizes}")
        object.__setattr__(self, "sizes", sizes)


@dataclass(frozen=True)
class Rendition:
    size: str
    width: int
    height: int
    format: str
    mime: str
    extension: str
    data: bytes
    shared_with: str | None = None  # name of the larger size whose identical output this reuses


@dataclass(frozen=True)
class RenderResult:
    source: SourceInfo
    renditions: tuple[Rendition, ...]  # one per requested size, in SIZE_BOXES order


def render_renditions(data: bytes, settings: RenderSettings, limits: ValidationLimits) -> RenderResult:
    """Validate `data` and render the requested sizes; raises ImageRejected for refused input.

    Pixels come out upright (EXIF orientation applied), in sRGB, with alpha only where the source
    has transparent pixels, and without metadata. Sizes whose dimensions equal a larger size's are
    encoded once and marked `shared_with` that size (a 1920x1080 source is its own `large`).
    """
    names = [name for name in SIZE_BOXES if name in settings.sizes]
    source, image = open_source(data, limits)
    try:
        if "original" not in names and image.format in _DRAFTABLE:
            # A JPEG's EXIF sits in its header, so the upright size is known before decoding.
            orientation = exif_orientation(image)
            upright = upright_size(source.width, source.height, orientation)
            _decode_smaller(image, fit_inside(*upright, SIZE_BOXES[names[0]]), orientation)
        decode(image, source.format)
        # Read after decoding: PNG may carry its EXIF after the image data.
        orientation = exif_orientation(image)
        upright = upright_size(source.width, source.height, orientation)
        targets = [(name, fit_inside(*upright, SIZE_BOXES[name])) for name in names]
        renditions = _encode_all(to_working(image, orientation), targets, settings)
    finally:
        image.close()
    return RenderResult(source=source, renditions=renditions)


def render_settings_signature(settings: RenderSettings) -> str:
    """Short stable id of everything that shapes the output bytes, e.g. "webp-q85-m4-v1".

    A selection of sizes other than all of them adds their initials ("-lmst"), because the cascade
    (and JPEG reduced decoding when `original` is left out) depends on which sizes are made.
    """
    effort = f"m{settings.webp_method}" if settings.format == "webp" else f"s{settings.avif_speed}"
    signature = f"{settings.format}-q{settings.quality}-{effort}-v{ENGINE_VERSION}"
    if set(settings.sizes) != set(SIZE_BOXES):
        signature += "-" + "".join(name[0] for name in SIZE_BOXES if name in settings.sizes)
    return signature


def _encode_all(
    pixels: Image.Image, targets: list[tuple[str, tuple[int, int]]], settings: RenderSettings
) -> tuple[Rendition, ...]:
    output = OUTPUT_FORMATS[settings.format]
    cascade = Cascade(pixels)
    encoded: dict[tuple[int, int], tuple[str, bytes]] = {}
    renditions = []
    for name, (width, height) in targets:
        shared = encoded.get((width, height))
        if shared is None:
            data = encode(cascade.resized((width, height)), settings)
            encoded[(width, height)] = (name, data)
            shared_with = None
        else:
            shared_with, data = shared
        renditions.append(
            Rendition(
                size=name,
                width=width,
                height=height,
                format=output.name,
                mime=output.mime,
                extension=output.extension,
                data=data,
                shared_with=shared_with,
            )
        )
    return tuple(renditions)


def _decode_smaller(image: Image.Image, largest: tuple[int, int], orientation: int) -> None:
    """Ask the JPEG decoder for a reduced scale when no rendition needs full resolution.

    DCT-domain scaling skips most of the decoding work, and keeping the decoded image at least
    twice the largest rendition keeps the final resampling step in charge of quality.
    """
    width, height = stored_size(*largest, orientation)
    image.draft(None, (width * _DRAFT_GAP, height * _DRAFT_GAP))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
