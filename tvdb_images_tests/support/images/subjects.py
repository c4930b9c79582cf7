"""Generated pictures with a known subject off-centre, for the content-aware crops.

Each picture is a background (plain, or per-pixel noise) with one textured subject (a disc of
stripes in a colour apart from the background) whose mask is known, so a test can say how much of
the subject a crop window keeps.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
from PIL import Image


class Subject(NamedTuple):
    image: Image.Image
    mask: np.ndarray  # bool, True on the subject's pixels (rows, columns)


def subject_picture(
    size: tuple[int, int],
    centre: tuple[int, int],
    radius: int,
    *,
    noisy: bool,
    seed: int = 1,
) -> Subject:
    """A `size` picture with a striped disc of `radius` at `centre` on a plain or noisy background."""
    width, height = size
    rng = np.random.default_rng(seed)
    if noisy:
        pixels = rng.normal(128, 40, (height, width, 3)).clip(0, 255)
    else:
        pixels = np.full((height, width, 3), (90, 120, 160), dtype=np.float64)
    ys, xs = np.mgrid[0:height, 0:width]
    mask = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
    stripes = ((xs + ys) // 12) % 2 == 0
    subject = np.where(stripes[..., None], (235, 200, 40), (170, 40, 30))
    pixels = np.where(mask[..., None], subject, pixels)
    return Subject(Image.fromarray(pixels.astype(np.uint8), "RGB"), mask)


def flat_picture(size: tuple[int, int], colour: tuple[int, int, int] = (120, 130, 140)) -> Image.Image:
    return Image.new("RGB", size, colour)


def kept(mask: np.ndarray, window: tuple[int, int, int, int]) -> float:
    """The share of the subject's pixels inside `window` (x, y, width, height)."""
    x, y, width, height = window
    return float(mask[y : y + height, x : x + width].sum() / mask.sum())


def centre_window(size: tuple[int, int], window: tuple[int, int]) -> tuple[int, int, int, int]:
    """A plain centre crop of `window` in a `size` picture."""
    return (size[0] - window[0]) // 2, (size[1] - window[1]) // 2, window[0], window[1]


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()
