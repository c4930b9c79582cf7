"""The rule that maps a source size into each rendition size of the registry."""

from __future__ import annotations

import math
from collections.abc import Callable

from tvdb_images.registry import RENDITION_SIZES

# The registry's sizes by name, largest first; every one is an "inside" fit (`fit_inside`).
SIZE_BOXES: dict[str, tuple[int, int] | None] = {size.name: size.box for size in RENDITION_SIZES}


def fit_inside(width: int, height: int, box: tuple[int, int] | None) -> tuple[int, int]:
    """Largest size with the source's aspect ratio that fits `box`; never upscales, never 0.

    Rounding matches Pillow's `Image.thumbnail` (floor or ceil, whichever keeps the aspect ratio
    closer), so a rendition has the same dimensions a plain Pillow thumbnail would.
    """
    if width < 1 or height < 1:
        raise ValueError(f"source size must be positive, got {width}x{height}")
    if box is None:
        return width, height
    box_w, box_h = box
    if box_w < 1 or box_h < 1:
        raise ValueError(f"box must be positive, got {box_w}x{box_h}")
    if width <= box_w and height <= box_h:
        return width, height
    aspect = width / height
    if box_w / box_h >= aspect:
        # Height is the binding side.
        new_w = _round_aspect(box_h * aspect, key=lambda w: abs(aspect - w / box_h))
        return min(new_w, box_w), box_h
    new_h = _round_aspect(box_w / aspect, key=lambda h: abs(aspect - box_w / h))
    return box_w, min(new_h, box_h)


def _round_aspect(value: float, key: Callable[[int], float]) -> int:
    candidates = [c for c in (math.floor(value), math.ceil(value)) if c >= 1]
    return min(candidates, key=key) if candidates else 1
