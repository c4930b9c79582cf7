"""Downscale one decoded image into several rendition sizes, reusing earlier results.

Resampling cost grows with the area of the image being read, so each size is produced from the
smallest image already at hand (the source or a larger rendition) that is still at least
`SOURCE_GAP` times the target on both sides. That gap keeps quality: a filter reading from an
image only slightly larger than its output (1.1x, say) softens noticeably when chained, while from
2x or more the result is indistinguishable from resampling the full source. The filter is
Pillow's BICUBIC with `reducing_gap=2` (a cheap box `reduce()` by the integer part of the ratio
over 2, then a bicubic finish), the same recipe as Pillow's own `Image.thumbnail`.
"""

from __future__ import annotations

from PIL import Image

FILTER = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0
SOURCE_GAP = 2.0
EXACT_REDUCE = False


class Cascade:
    """Produces rendition pixels largest first; keeps what it made so smaller sizes can reuse it."""

    def __init__(self, image: Image.Image) -> None:
        self._images: list[Image.Image] = [image]

    def resized(self, size: tuple[int, int]) -> Image.Image:
        """Pixels of `size` (which must not exceed the source); never upscales."""
        for image in self._images:
            if image.size == size:
                return image
        source = self._pick_source(size)
        factor = source.width // size[0]
        if EXACT_REDUCE and factor > 1 and source.size == (size[0] * factor, size[1] * factor):
            result = source.reduce(factor)
        else:
            result = source.resize(size, FILTER, reducing_gap=REDUCING_GAP)
        self._images.append(result)
        return result

    def _pick_source(self, size: tuple[int, int]) -> Image.Image:
        width, height = size
        best = self._images[0]
        for image in self._images[1:]:
            big_enough = image.width >= SOURCE_GAP * width and image.height >= SOURCE_GAP * height
            if big_enough and image.width * image.height < best.width * best.height:
                best = image
        return best
