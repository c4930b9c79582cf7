"""Downscale one decoded image into several rendition sizes, reusing earlier results.

Pillow's resampling cost grows with the area of the image it reads, so where that area is large
each size is produced from the smallest image already at hand (a larger rendition) that is still
at least `SOURCE_GAP` times the target on both sides; a 4K source is read once for `large`, and
`medium`, `small` and `thumbnail` cascade from there at a fraction of the cost.

Sources up to `DIRECT_MAX_PIXELS` (1080p and smaller, most TVDB artwork) are instead resampled
directly for every size: that costs only a few milliseconds per size at these areas and gives the
reference result, where chaining two bicubic passes would soften small renditions measurably.

The filter is BICUBIC with `reducing_gap=2` (a cheap box `reduce()` by the integer part of the
ratio over 2, then a bicubic finish), the recipe of Pillow's own `Image.thumbnail`, so renditions
of small sources are identical to plain Pillow thumbnails.
"""

from __future__ import annotations

from PIL import Image

FILTER = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0
SOURCE_GAP = 1.5
DIRECT_MAX_PIXELS = 1920 * 1080 + 1920 * 64  # 1080p, with some slack for odd crops


class Cascade:
    """Produces rendition pixels largest first; keeps what it made so smaller sizes can reuse it."""

    def __init__(self, image: Image.Image) -> None:
        self._images: list[Image.Image] = [image]

    def resized(self, size: tuple[int, int]) -> Image.Image:
        """Pixels of `size` (which must not exceed the source); never upscales."""
        for image in self._images:
            if image.size == size:
                return image
        result = self._pick_source(size).resize(size, FILTER, reducing_gap=REDUCING_GAP)
        self._images.append(result)
        return result

    def _pick_source(self, size: tuple[int, int]) -> Image.Image:
        source = self._images[0]
        if source.width * source.height <= DIRECT_MAX_PIXELS:
            return source
        width, height = size
        best = source
        for image in self._images[1:]:
            big_enough = image.width >= SOURCE_GAP * width and image.height >= SOURCE_GAP * height
            if big_enough and image.width * image.height < best.width * best.height:
                best = image
        return best
