"""Decide where each rendition's pixels come from, and resample them.

Every size is made the way Pillow's own `Image.thumbnail` makes it: BICUBIC with `reducing_gap=2` (a
cheap box `reduce()` by the integer part of the ratio over 2, then a bicubic finish), and for JPEG
sources from a reduced-scale DCT decode (1/2, 1/4 or 1/8) whenever the source is at least twice the
box times that scale. So a rendition has exactly the pixels a plain Pillow script writes; the savings
come from decoding each scale once and encoding each distinct output once, not from cheaper resampling.
That is deliberate and measured (`python -m benchmarks.engine`): after WebP encoding, any other path to
a size (cascading from a larger rendition, a box `reduce()`, a bilinear filter, a different JPEG scale)
scores SSIM 0.96-0.98 against the plain Pillow output on the corpus photographs, because the encoder
then makes different decisions everywhere; only the same pixels give the same output.

Two exceptions, for JPEGs over 1080p, pay for themselves many times over. A size that is exactly the
source divided by 2, 4 or 8 (the 1920x1080 `large` of a 3840x2160 fanart) comes straight out of the
JPEG decoder at that scale, with no resampling: an 8 ms decode instead of a 55 ms bicubic pass over 8
megapixels, SSIM 0.989 against the bicubic result. And a size `thumbnail` would resample from full
resolution is resampled from such a decode instead when it is at least `SOURCE_GAP` times the target
(that fanart's `medium`: 16 ms instead of 47 ms, SSIM 0.988).

Non-JPEG sources have no reduced-scale decoder. Those larger than `DIRECT_MAX_PIXELS` cascade instead:
each size is resampled from the smallest rendition already made that is still `SOURCE_GAP` times the
target, so a 4K PNG is read once at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .pixels import stored_size, upright_size
from .sizes import SIZE_BOXES

FILTER = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0
SOURCE_GAP = 1.5
DIRECT_MAX_PIXELS = 1920 * 1080 + 1920 * 64  # 1080p, with some slack for odd crops
DCT_SCALES = (8, 4, 2)  # reduced sizes libjpeg decodes to directly (1/8, 1/4, 1/2)
FULL_SCALE = 1


@dataclass(frozen=True)
class Step:
    """How one rendition is made: from the source decoded at 1/`scale`, resampled unless `exact`."""

    name: str
    size: tuple[int, int]  # upright target size
    scale: int  # 1 = full resolution; 2, 4, 8 = JPEG DCT-scaled decode
    exact: bool = False  # the decode at `scale` already has exactly `size`: no resampling


def plan_steps(
    targets: list[tuple[str, tuple[int, int]]],
    stored: tuple[int, int],
    orientation: int,
    *,
    reduced_decoding: bool,
) -> list[Step]:
    """One `Step` per target (largest first), choosing the decode scale each is made from.

    `stored` is the source size before EXIF orientation; `reduced_decoding` is true for JPEG.
    """
    upright = upright_size(*stored, orientation)
    steps: list[Step] = []
    for name, size in targets:
        if size == upright or not reduced_decoding:
            steps.append(Step(name, size, FULL_SCALE))
            continue
        exact = _exact_dct_scale(stored, upright, size)
        if exact is not None:
            steps.append(Step(name, size, exact, exact=True))
            continue
        scale = _thumbnail_scale(stored, stored_size(*_box_of(name), orientation))
        if scale == FULL_SCALE and stored[0] * stored[1] > DIRECT_MAX_PIXELS:
            scale = _reuse_exact_decode(steps, size)
        steps.append(Step(name, size, scale))
    return steps


def resample(pixels: Image.Image, size: tuple[int, int], scale: int, upright: tuple[int, int]) -> Image.Image:
    """`pixels` (the source decoded at 1/`scale`) resized to `size` exactly as `Image.thumbnail` does.

    A reduced decode is rounded up to whole pixels, so the source area is the fractional box
    (0, 0, width/scale, height/scale), as in `thumbnail`. (For an EXIF-rotated source whose sides do
    not divide by the scale, the partial edge pixel lands on another side after transposition; the
    box then misses it by under one decoded pixel, which no rendition can show.)
    """
    if pixels.size == size:
        return pixels
    box = (0.0, 0.0, upright[0] / scale, upright[1] / scale)
    return pixels.resize(size, FILTER, box=box, reducing_gap=REDUCING_GAP)


class Cascade:
    """Produces rendition pixels largest first; keeps what it made so smaller sizes can reuse it.

    For sources without reduced-scale decoding (not JPEG): up to `DIRECT_MAX_PIXELS` every size is
    resampled directly from the source; larger ones reuse the smallest rendition at least
    `SOURCE_GAP` times the target.
    """

    def __init__(self, image: Image.Image) -> None:
        self._images: list[Image.Image] = [image]
        self._cascade = image.width * image.height > DIRECT_MAX_PIXELS

    def resized(self, size: tuple[int, int]) -> Image.Image:
        """Pixels of `size` (which must not exceed the source); never upscales."""
        for image in self._images:
            if image.size == size:
                return image
        result = self._pick_source(size).resize(size, FILTER, reducing_gap=REDUCING_GAP)
        if self._cascade:
            self._images.append(result)
        return result

    def _pick_source(self, size: tuple[int, int]) -> Image.Image:
        source = self._images[0]
        if not self._cascade:
            return source
        width, height = size
        best = source
        for image in self._images[1:]:
            big_enough = image.width >= SOURCE_GAP * width and image.height >= SOURCE_GAP * height
            if big_enough and image.width * image.height < best.width * best.height:
                best = image
        return best


def _box_of(name: str) -> tuple[int, int]:
    box = SIZE_BOXES[name]
    if box is None:
        raise ValueError(f"size {name!r} has no box")
    return box


def _thumbnail_scale(stored: tuple[int, int], box: tuple[int, int]) -> int:
    """The JPEG decode scale `Image.thumbnail(box)` asks for (its `draft` with the reducing gap)."""
    requested = (int(box[0] * REDUCING_GAP), int(box[1] * REDUCING_GAP))
    ratio = min(stored[0] // requested[0], stored[1] // requested[1])
    return next((scale for scale in DCT_SCALES if ratio >= scale), FULL_SCALE)


def _reuse_exact_decode(steps: list[Step], size: tuple[int, int]) -> int:
    """For a size `thumbnail` would resample from a source over 1080p: the smallest exact reduced
    decode already made (a rendition itself) that is still SOURCE_GAP times the target, else full.

    A 4K source's `medium` then comes from its 1920x1080 decode (16 ms) rather than from 8 megapixels
    (47 ms), at SSIM 0.988 against the plain Pillow output.
    """
    candidates = [
        step
        for step in steps
        if step.exact and step.size[0] >= SOURCE_GAP * size[0] and step.size[1] >= SOURCE_GAP * size[1]
    ]
    if not candidates:
        return FULL_SCALE
    return min(candidates, key=lambda step: step.size[0] * step.size[1]).scale


def _exact_dct_scale(stored: tuple[int, int], upright: tuple[int, int], size: tuple[int, int]) -> int | None:
    """The scale whose reduced decode is exactly `size` (sides divisible by it), if there is one."""
    for scale in DCT_SCALES:
        divides = stored[0] % scale == 0 and stored[1] % scale == 0
        if divides and (upright[0] // scale, upright[1] // scale) == size:
            return scale
    return None
