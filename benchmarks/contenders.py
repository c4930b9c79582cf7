"""The rendition pipelines the engine benchmark puts side by side, all with the same sizes and encoder.

Each takes the source bytes and returns one encoded output per size (largest first, `original` included),
so bytes and pixels can be compared size by size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tvdb_images.imaging import SIZE_BOXES, RenderSettings, ValidationLimits, fit_inside, render_renditions
from tvdb_images.imaging.pixels import exif_orientation, to_working

Pipeline = Callable[[bytes], list[bytes]]


@dataclass(frozen=True)
class Encoder:
    quality: int = 85
    method: int = 4

    def webp(self, image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=self.quality, method=self.method)
        return buffer.getvalue()


def naive_pillow(encoder: Encoder) -> Pipeline:
    """What a straightforward script does: for each size, open the source, `thumbnail()`, save."""

    def run(data: bytes) -> list[bytes]:
        outputs = []
        for box in SIZE_BOXES.values():
            with Image.open(io.BytesIO(data)) as image:
                if box is not None:
                    image.thumbnail(box)
                outputs.append(encoder.webp(image))
        return outputs

    return run


def engine(encoder: Encoder) -> Pipeline:
    settings = RenderSettings(quality=encoder.quality, webp_method=encoder.method)
    limits = ValidationLimits()

    def run(data: bytes) -> list[bytes]:
        return [rendition.data for rendition in render_renditions(data, settings, limits).renditions]

    return run


@dataclass
class Prepared:
    """The limit's inputs: the source bytes and every distinct output's pixels, resized beforehand."""

    data: bytes
    pixels: list[Image.Image]


def prepare_limit(data: bytes) -> Prepared:
    """Working pixels as the engine encodes them (upright, sRGB, alpha only where used), every size."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        full = to_working(image, exif_orientation(image))
        distinct: dict[tuple[int, int], Image.Image] = {}
        for box in SIZE_BOXES.values():
            size = fit_inside(*full.size, box)
            if size not in distinct:
                same = size == full.size
                pixels = full.copy() if same else full.resize(size, Image.Resampling.BICUBIC)
                distinct[size] = pixels if pixels.mode in ("RGB", "RGBA") else pixels.convert("RGB")
    return Prepared(data, list(distinct.values()))


def limit(encoder: Encoder, prepared: Prepared) -> list[bytes]:
    """Decode the source once, encode each distinct output once: no pipeline does less work."""
    with Image.open(io.BytesIO(prepared.data)) as image:
        image.load()
    return [encoder.webp(pixels) for pixels in prepared.pixels]


def load_pyvips():
    """pyvips on one thread, with its operation cache off so repeated runs do the work again."""
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    import pyvips

    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)
    return pyvips


def pyvips_per_size(encoder: Encoder) -> Pipeline:
    """libvips' idiomatic resizer: `thumbnail_buffer` per size (shrink-on-load), the original re-encoded.

    This is what an on-the-fly resizer does for each requested size.
    """
    pyvips = load_pyvips()

    def run(data: bytes) -> list[bytes]:
        source = pyvips.Image.new_from_buffer(data, "", access="sequential")
        width, height = source.width, source.height
        outputs = [_vips_webp(source, encoder)]
        for box in list(SIZE_BOXES.values())[1:]:
            w, h = fit_inside(width, height, box)
            image = pyvips.Image.thumbnail_buffer(data, w, height=h, size="force")
            outputs.append(_vips_webp(image, encoder))
        return outputs

    return run


def pyvips_once(encoder: Encoder) -> Pipeline:
    """libvips at its best for the same outputs: decode once, `thumbnail_image` per distinct size,
    encode each distinct output once (the same structural savings the engine makes)."""
    pyvips = load_pyvips()

    def run(data: bytes) -> list[bytes]:
        source = pyvips.Image.new_from_buffer(data, "").copy_memory()
        encoded: dict[tuple[int, int], bytes] = {}
        outputs = []
        for box in SIZE_BOXES.values():
            size = fit_inside(source.width, source.height, box)
            if size not in encoded:
                image = (
                    source if box is None else source.thumbnail_image(size[0], height=size[1], size="force")
                )
                encoded[size] = _vips_webp(image, encoder)
            outputs.append(encoded[size])
        return outputs

    return run


def _vips_webp(image, encoder: Encoder) -> bytes:
    return image.webpsave_buffer(Q=encoder.quality, effort=encoder.method, keep="none")
