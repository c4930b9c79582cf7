"""An optional watermark, composited onto chosen rendition sizes at render time.

The PNG is read and checked once, at start (`load_watermark`), and travels inside `RenderSettings`
as bytes plus a content hash, so a render worker process needs no file access and the render
signature changes exactly when the file or a parameter changes. Each worker decodes it once and keeps
one scaled, opacity-applied copy per output size (`_scaled`), not one per artwork: the few rendition
sizes of a catalog repeat endlessly, so the cache stays small and the per-artwork cost is one
`alpha_composite` over the watermark's own box.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image

from tvdb_images.config import WATERMARK_POSITIONS as POSITIONS

from .sizes import SIZE_BOXES

__all__ = [
    "MAX_WATERMARK_BYTES",
    "MAX_WATERMARK_SIDE",
    "POSITIONS",
    "Watermark",
    "WatermarkError",
    "apply_watermark",
    "load_watermark",
    "placement",
]

MAX_WATERMARK_BYTES = 8 * 1024 * 1024
MAX_WATERMARK_SIDE = 4096
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class WatermarkError(ValueError):
    """The watermark file or a parameter cannot be used; the message says why, without the setting name."""


@dataclass(frozen=True)
class Watermark:
    """A decoded-once watermark and how to place it; compared and hashed by content hash and parameters."""

    data: bytes = field(repr=False, compare=False)  # the PNG file, as read at start
    digest: str  # sha256 of `data`, hex
    sizes: tuple[str, ...]  # rendition sizes it is applied to
    position: str = "bottom-right"
    opacity: float = 0.5  # multiplies the PNG's own alpha
    margin: float = 0.02  # >= 1: pixels; < 1: fraction of the rendition's shorter side
    scale: float = 0.2  # watermark width as a fraction of the rendition's width

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise WatermarkError(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if not 0.0 <= self.opacity <= 1.0:
            raise WatermarkError(f"opacity must be in 0..1, got {self.opacity!r}")
        if self.margin < 0:
            raise WatermarkError(f"margin must be >= 0, got {self.margin!r}")
        if not 0.0 < self.scale <= 1.0:
            raise WatermarkError(f"scale must be in (0, 1], got {self.scale!r}")
        unknown = [size for size in self.sizes if size not in SIZE_BOXES]
        if unknown or not self.sizes:
            raise WatermarkError(
                f"sizes must be a non-empty selection of {list(SIZE_BOXES)}, got {self.sizes}"
            )

    @property
    def tag(self) -> str:
        """10 hex digits that change with the file and with every parameter (the signature's part)."""
        sizes = ",".join(name for name in SIZE_BOXES if name in self.sizes)
        params = f"{self.digest}|{sizes}|{self.position}|{self.opacity:g}|{self.margin:g}|{self.scale:g}"
        return hashlib.sha256(params.encode()).hexdigest()[:10]


def load_watermark(
    path: Path,
    *,
    sizes: tuple[str, ...],
    position: str = "bottom-right",
    opacity: float = 0.5,
    margin: float = 0.02,
    scale: float = 0.2,
) -> Watermark:
    """Read and check the PNG once: it exists, is a PNG, decodes to the end, has alpha, is not huge."""
    try:
        if not path.is_file():
            raise WatermarkError(f"{path} does not exist or is not a file")
        if path.stat().st_size > MAX_WATERMARK_BYTES:
            raise WatermarkError(f"{path} is larger than {MAX_WATERMARK_BYTES // (1024 * 1024)} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise WatermarkError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data.startswith(_PNG_MAGIC):
        raise WatermarkError(f"{path} is not a PNG file")
    image = _decode(data, path)
    if image.width > MAX_WATERMARK_SIDE or image.height > MAX_WATERMARK_SIDE:
        raise WatermarkError(
            f"{path} is {image.width}x{image.height}; "
            f"at most {MAX_WATERMARK_SIDE}x{MAX_WATERMARK_SIDE} is allowed"
        )
    if not _has_alpha(image):
        raise WatermarkError(f"{path} has no alpha channel (save it as a PNG with transparency)")
    return Watermark(
        data=data,
        digest=hashlib.sha256(data).hexdigest(),
        sizes=tuple(sizes),
        position=position,
        opacity=opacity,
        margin=margin,
        scale=scale,
    )


def placement(
    output: tuple[int, int], mark: tuple[int, int], watermark: Watermark
) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the scaled watermark on an `output`-sized rendition.

    Its width is `scale` times the rendition's, its aspect ratio kept, shrunk to fit inside the margins;
    never below one pixel, so even a tiny rendition of a listed size carries it.
    """
    out_w, out_h = output
    margin_px = watermark.margin if watermark.margin >= 1 else watermark.margin * min(out_w, out_h)
    margin = min(round(margin_px), (out_w - 1) // 2, (out_h - 1) // 2)
    room_w, room_h = out_w - 2 * margin, out_h - 2 * margin
    width = min(max(1, round(out_w * watermark.scale)), room_w)
    height = max(1, round(width * mark[1] / mark[0]))
    if height > room_h:
        height = room_h
        width = max(1, min(room_w, round(height * mark[0] / mark[1])))
    vertical, _, horizontal = watermark.position.partition("-")
    if watermark.position == "center":
        left, top = (out_w - width) // 2, (out_h - height) // 2
    else:
        left = margin if horizontal == "left" else out_w - margin - width
        top = margin if vertical == "top" else out_h - margin - height
    return left, top, width, height


def apply_watermark(pixels: Image.Image, watermark: Watermark) -> Image.Image:
    """A new image: `pixels` with the watermark composited on ("over"); `pixels` is left untouched.

    Alpha is kept where the rendition has it (RGBA/LA become RGBA, alpha unchanged outside the
    watermark's box); an opaque rendition stays opaque (RGB). Greyscale becomes colour, because the
    watermark may be coloured. Only the watermark's box is converted and composited: over a whole
    1080p frame the conversions alone cost ~25 ms, the box ~1 ms.
    """
    left, top, mark = _scaled(watermark, pixels.size)
    box = (left, top, left + mark.width, top + mark.height)
    mode = "RGBA" if pixels.mode in ("RGBA", "LA") else "RGB"
    region = pixels.crop(box).convert("RGBA")
    region.alpha_composite(mark)
    result = pixels.copy() if pixels.mode == mode else pixels.convert(mode)
    result.paste(region if mode == "RGBA" else region.convert("RGB"), box)
    return result


@lru_cache(maxsize=64)
def _scaled(watermark: Watermark, output: tuple[int, int]) -> tuple[int, int, Image.Image]:
    """The watermark for one output size, resized and with `opacity` applied; cached per size."""
    original = _rgba(watermark)
    left, top, width, height = placement(output, original.size, watermark)
    mark = original
    if original.size != (width, height):
        mark = original.resize((width, height), Image.Resampling.LANCZOS)
    if watermark.opacity < 1.0:
        alpha = mark.getchannel("A").point(lambda value: round(value * watermark.opacity))
        mark = mark.copy()
        mark.putalpha(alpha)
    return left, top, mark


@lru_cache(maxsize=4)
def _rgba(watermark: Watermark) -> Image.Image:
    return _decode(watermark.data, None).convert("RGBA")


def _decode(data: bytes, path: Path | None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise WatermarkError(f"{path or 'watermark'} does not decode as a PNG ({exc})") from None
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
