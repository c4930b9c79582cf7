"""Render every rendition of one source image: validate, decode once per scale, resize, encode.

`render_renditions` is a plain top-level function taking and returning frozen dataclasses, so it
can run in a `ProcessPoolExecutor` worker. It does no I/O.

Each size gets exactly the pixels Pillow's `Image.thumbnail` gives it (see `resize` for why, and for
the two exceptions made for JPEGs over 1080p); the work saved over a plain Pillow script is
structural: the source is decoded once per scale instead of once per size, and sizes with identical
dimensions are encoded once.

Animated sources (GIF, WebP, APNG, AVIF sequences) are rendered from their first frame only: the
renditions are still images.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from tvdb_images.registry import (
    DEFAULT_OUTPUT_FORMAT,
    FIT_CROP,
    OUTPUT_ENCODINGS,
    OUTPUT_FORMATS,
    SOURCE_FORMATS,
    RenditionSize,
)

from . import crop
from .crop import CropWindow
from .encode import encode
from .perceptual import perceptual_hash
from .pixels import decode, exif_orientation, to_working, upright_size
from .placeholders import Placeholders, compute_placeholders
from .resize import FULL_SCALE, Cascade, Step, plan_steps, resample
from .sizes import SIZE_BOXES, fit_inside
from .validate import SourceInfo, ValidationLimits, open_source
from .watermark import Watermark, apply_watermark

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
ENGINE_VERSION = 3  # 3: placeholders (ThumbHash, BlurHash, dominant colour) with every render

# Formats whose decoder can produce 1/2, 1/4 and 1/8 scale directly (DCT scaling).
_DRAFTABLE = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class RenderSettings:
    format: str = DEFAULT_OUTPUT_FORMAT  # a name of the registry's OUTPUT_FORMATS
    quality: int = 85
    webp_method: int = 4
    avif_speed: int = 8
    sizes: tuple[str, ...] = tuple(SIZE_BOXES)
    crops: tuple[RenditionSize, ...] = ()  # CROP_RENDITIONS rows, made after the sizes
    watermark: Watermark | None = None  # composited onto `watermark.sizes` only (imaging.watermark)

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
        crops = tuple(RenditionSize(*row) for row in self.crops)
        names = [row.name for row in crops]
        if any(row.fit != FIT_CROP or row.box is None or row.name in SIZE_BOXES for row in crops):
            raise ValueError(f"crops must be crop rows named apart from {list(SIZE_BOXES)}, got {crops}")
        if len(set(names)) != len(names):
            raise ValueError(f"crop names must be unique, got {names}")
        object.__setattr__(self, "crops", crops)
        if self.watermark is not None:
            unknown = [size for size in self.watermark.sizes if size not in SIZE_BOXES and size not in names]
            if unknown:
                raise ValueError(
                    f"the watermark lists {unknown}, neither a size nor one of the crops {names}"
                )


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
    crop: CropWindow | None = None  # a crop rendition's window, in upright source pixels


@dataclass(frozen=True)
class RenderResult:
    source: SourceInfo
    # One per requested size and format, in SIZE_BOXES order, then each crop in every format.
    renditions: tuple[Rendition, ...]
    placeholders: Placeholders | None = None  # from the smallest size's pixels (never a crop's)
    perceptual_hash: int | None = None  # unsigned 64-bit pHash of the same pixels (imaging.perceptual)


def render_renditions(
    data: bytes, settings: RenderSettings | Sequence[RenderSettings], limits: ValidationLimits
) -> RenderResult:
    """Validate `data` and render the requested sizes; raises ImageRejected for refused input.

    Pixels come out upright (EXIF orientation applied), in sRGB, with alpha only where the source
    has transparent pixels, and without metadata. Sizes whose dimensions equal a larger size's are
    encoded once and marked `shared_with` that size (a 1920x1080 source is its own `large`).

    Several settings (one per output format, with the same sizes) render every size in each format
    from the one decode and the one resize of each size: renditions come size by size, each size in
    the settings' order. The crops (`RenderSettings.crops`) follow, each in every format from one
    window; the placeholders come from the smallest size, never from a crop.
    """
    formats = _one_per_format((settings,) if isinstance(settings, RenderSettings) else tuple(settings))
    names = [name for name in SIZE_BOXES if name in formats[0].sizes]
    source, image = open_source(data, limits)
    decodes = _Decodes(data, source, image)
    try:
        scalable = image.format in _DRAFTABLE
        if not scalable:
            # Decode first: PNG may carry its EXIF after the image data. A JPEG's is in its header.
            decode(image, source.format)
        orientation = exif_orientation(image)
        decodes.orientation = orientation
        upright = upright_size(source.width, source.height, orientation)
        targets = [(name, fit_inside(*upright, SIZE_BOXES[name])) for name in names]
        steps = plan_steps(targets, (source.width, source.height), orientation, reduced_decoding=scalable)
        # Crops first, while the full-scale decode is fresh (the `original` step reuses it).
        release = all(step.scale != FULL_SCALE for step in steps)
        crops = _crop_all(decodes, formats, release=release)
        renditions, smallest = _encode_all(steps, decodes, upright, formats, cascade=not scalable)
        placeholders = compute_placeholders(smallest)
        phash = perceptual_hash(smallest)
    finally:
        decodes.close()
    return RenderResult(
        source=source, renditions=renditions + crops, placeholders=placeholders, perceptual_hash=phash
    )


def render_settings_signature(settings: RenderSettings) -> str:
    """Short stable id of everything that shapes the output bytes, e.g. "webp-q85-m4-v1".

    A selection of sizes other than all of them adds their initials ("-lmst"), because the cascade
    (and JPEG reduced decoding when `original` is left out) depends on which sizes are made.
    Crops add "-c" and a hash of their names, boxes and `crop.CROP_VERSION` ("-c1a2b3c4d"), in each
    format's signature.
    A watermark adds "-w" and a hash of its file and parameters ("-w3f9c0a12be"). The signature is
    per artwork, and every artwork has every size, so a watermark change re-renders every artwork: the
    sizes it does not touch come out byte-identical to the same keys (the encoders are deterministic).
    """
    encoding = OUTPUT_ENCODINGS[settings.format]
    effort = f"{encoding.effort_tag}{getattr(settings, encoding.effort_setting)}"
    signature = f"{settings.format}-q{settings.quality}-{effort}-v{ENGINE_VERSION}"
    if set(settings.sizes) != set(SIZE_BOXES):
        signature += "-" + "".join(name[0] for name in SIZE_BOXES if name in settings.sizes)
    if settings.crops:
        # Adding, removing or changing a crop (or how windows are chosen) renders the artwork again.
        spec = ",".join(f"{r.name}:{r.box[0]}x{r.box[1]}" for r in settings.crops if r.box)
        signature += f"-c{hashlib.sha256(f'{crop.CROP_VERSION}|{spec}'.encode()).hexdigest()[:8]}"
    if settings.watermark is not None:
        signature += f"-w{settings.watermark.tag}"
    return signature


def _one_per_format(formats: tuple[RenderSettings, ...]) -> tuple[RenderSettings, ...]:
    if not formats or len({f.format for f in formats}) != len(formats):
        raise ValueError(f"one RenderSettings per output format, got {[f.format for f in formats]}")
    if len({f.watermark for f in formats}) != 1:
        raise ValueError("every output format carries the same watermark")
    if len({frozenset(f.sizes) for f in formats}) != 1:
        raise ValueError("every output format's RenderSettings must select the same sizes")
    if len({f.crops for f in formats}) != 1:
        raise ValueError("every output format's RenderSettings must list the same crops")
    return formats


def _crop_all(
    decodes: _Decodes, formats: tuple[RenderSettings, ...], *, release: bool
) -> tuple[Rendition, ...]:
    """The crop renditions in every format, from the full-scale upright pixels; one saliency map and
    one window per crop serve every format (the watermark, if it lists the crop, composited once)."""
    first = formats[0]
    if not first.crops:
        return ()
    watermark = first.watermark
    pixels = decodes.working(FULL_SCALE)
    content = crop.saliency_map(pixels)
    renditions = []
    for row in first.crops:
        assert row.box is not None  # checked by RenderSettings
        image, window = crop.crop_to_box(pixels, row.box, content)
        if watermark is not None and row.name in watermark.sizes:
            image = apply_watermark(image, watermark)
        for settings in formats:
            output = OUTPUT_FORMATS[settings.format]
            renditions.append(
                Rendition(
                    size=row.name,
                    width=image.width,
                    height=image.height,
                    format=output.name,
                    mime=output.mime,
                    extension=output.extension,
                    data=encode(image, settings),
                    crop=window,
                )
            )
    if release:
        decodes.release(FULL_SCALE)
    return tuple(renditions)


def _encode_all(
    steps: list[Step],
    decodes: _Decodes,
    upright: tuple[int, int],
    formats: tuple[RenderSettings, ...],
    *,
    cascade: bool,
) -> tuple[tuple[Rendition, ...], Image.Image]:
    """The renditions, and the pixels of the smallest one made (what the placeholders come from)."""
    last_use = {step.scale: index for index, step in enumerate(steps)}
    full: Cascade | None = None
    watermark = formats[0].watermark  # one watermark for every format (PipelineSettings)
    # Keyed by size and whether the size is watermarked: equal dimensions share one encoding only
    # when both or neither carry the watermark.
    encoded: dict[tuple[tuple[int, int], bool], tuple[str, tuple[bytes, ...]]] = {}
    renditions = []
    smallest: Image.Image | None = None
    for index, step in enumerate(steps):
        marked = watermark is not None and step.name in watermark.sizes
        shared = encoded.get((step.size, marked))
        if shared is None:
            pixels = decodes.working(step.scale)
            if cascade:
                full = full or Cascade(pixels)
                resized = full.resized(step.size)
            else:
                resized = resample(pixels, step.size, step.scale, upright)
            if marked and watermark is not None:
                resized = apply_watermark(resized, watermark)  # a new image: the cascade keeps clean pixels
            encodings = tuple(encode(resized, settings) for settings in formats)
            smallest = resized
            encoded[(step.size, marked)] = (step.name, encodings)
            shared_with = None
        else:
            shared_with, encodings = shared
        if last_use[step.scale] == index:
            decodes.release(step.scale)  # a 4K decode need not outlive its last size
        for settings, data in zip(formats, encodings, strict=True):
            output = OUTPUT_FORMATS[settings.format]
            renditions.append(
                Rendition(
                    size=step.name,
                    width=step.size[0],
                    height=step.size[1],
                    format=output.name,
                    mime=output.mime,
                    extension=output.extension,
                    data=data,
                    shared_with=shared_with,
                )
            )
    assert smallest is not None  # the first step is never shared
    return tuple(renditions), smallest


class _Decodes:
    """The source's upright working pixels at each decode scale, each decoded at most once.

    The image `open_source` returned (header parsed, nothing decoded yet for JPEG) serves the first
    scale asked for; other scales open the bytes again, which costs only a header parse.
    """

    def __init__(self, data: bytes, source: SourceInfo, first: Image.Image) -> None:
        self._data = data
        self._source = source
        self._unused: Image.Image | None = first
        self._opened: list[Image.Image] = [first]
        self._working: dict[int, Image.Image] = {}
        self.orientation = 1

    def working(self, scale: int) -> Image.Image:
        pixels = self._working.get(scale)
        if pixels is None:
            image = self._unused or self._open()
            self._unused = None
            if scale != FULL_SCALE:
                image.draft(None, (self._source.width // scale, self._source.height // scale))
            pixels = to_working(decode(image, self._source.format), self.orientation)
            self._working[scale] = pixels
        return pixels

    def release(self, scale: int) -> None:
        self._working.pop(scale, None)

    def close(self) -> None:
        self._working.clear()
        for image in self._opened:
            image.close()

    def _open(self) -> Image.Image:
        fmt = SOURCE_FORMATS[self._source.format]
        image = Image.open(io.BytesIO(self._data), formats=fmt.pillow_formats)
        self._opened.append(image)
        return image


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
