"""Exact-box crops placed on the image's content: which window of the source fills a crop box.

The window is the largest rectangle of the box's aspect ratio inside the (upright) source, so a crop
loses only what the box's shape forces; where it sits is chosen by content. A saliency map is made
from a small greyscale-and-colour copy (longest side `MAP_SIDE`): Sobel edge energy plus each pixel's
colour distance from the border's median colour (the likely background), each above its own median
so that a uniformly noisy or textured background scores nothing. Every window position is scored at
once with an integral image (summed-area table); among the positions within `PLATEAU` of the best,
the middle one wins, which centres a subject that fits rather than pushing it to an edge. A flat image
(no content above `FLAT_LEVEL`) gets a centre crop.

Never upscaled: when the window is smaller than the box (a small source), the output is the window
at the source's own scale, the box clamped to it with the box's aspect ratio.

Why not smartcrop.py (PyPI `smartcrop`, maintained, 0.5.0 of 2026-03): it scores skin, saturation and
edges for many candidate crops at several scales; its own README times 3.7 s of CPU for a 3200x2403
photograph (0.3 s for smartcrop.js), where this costs milliseconds (`python -m benchmarks.engine
--crops`), and it would be one more dependency for what a summed-area table does. Faces are not
detected (no detector ships with Pillow or numpy); a face is found as content like any other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

# Part of the render signature of crop renditions: bump when a change here moves windows.
CROP_VERSION = 1
MAP_SIDE = 160  # longest side of the saliency map, pixels
PLATEAU = 0.02  # positions within 2% of the best window's score count as equally good
FLAT_LEVEL = 1.0  # mean content (grey levels above the median) under which an image is flat
FILTER = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0


class CropWindow(NamedTuple):
    """The source pixels a crop shows, in upright source pixels (EXIF orientation applied)."""

    x: int
    y: int
    width: int
    height: int


def window_size(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The largest rectangle of `box`'s aspect ratio inside a `width` x `height` source."""
    box_w, box_h = box
    if width * box_h >= height * box_w:  # the source is wider than the box: full height
        return max(1, min(width, round(height * box_w / box_h))), height
    return width, max(1, min(height, round(width * box_h / box_w)))


def output_size(window: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The box, or the window itself when it is smaller than the box (never upscaled)."""
    if window[0] < box[0] or window[1] < box[1]:
        return window
    return box


def saliency_map(image: Image.Image) -> np.ndarray:
    """Content per pixel of a small copy of `image` (float32, longest side at most `MAP_SIDE`)."""
    scale = max(image.width, image.height) / MAP_SIDE
    small = image
    if scale > 1:
        size = (max(1, round(image.width / scale)), max(1, round(image.height / scale)))
        small = image.resize(size, Image.Resampling.BOX, reducing_gap=3.0)
    alpha = None
    if small.mode in ("RGBA", "LA"):
        alpha = np.asarray(small.getchannel("A"), dtype=np.float32) / 255.0
    rgb = np.asarray(small.convert("RGB"), dtype=np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    edges = _above_median(_sobel(grey))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    distance = np.sqrt(((rgb - np.median(border, axis=0)) ** 2).sum(axis=2))
    content = edges + _above_median(distance)
    if alpha is not None:
        content = content * alpha + _above_median(_sobel(alpha * 255.0))
    return content


def choose_window(image: Image.Image, box: tuple[int, int], content: np.ndarray | None = None) -> CropWindow:
    """Where the crop of `box` goes in `image` (upright working pixels); `content` from `saliency_map`
    when several crops share one (it is computed here otherwise)."""
    win_w, win_h = window_size(image.width, image.height, box)
    free_x, free_y = image.width - win_w, image.height - win_h
    if free_x == 0 and free_y == 0:
        return CropWindow(0, 0, win_w, win_h)
    content = saliency_map(image) if content is None else content
    if float(content.mean()) < FLAT_LEVEL:
        return CropWindow(free_x // 2, free_y // 2, win_w, win_h)
    map_h, map_w = content.shape
    fx, fy = _best_position(content, win_w * map_w / image.width, win_h * map_h / image.height)
    return CropWindow(round(fx * free_x), round(fy * free_y), win_w, win_h)


def crop_to_box(
    image: Image.Image, box: tuple[int, int], content: np.ndarray | None = None
) -> tuple[Image.Image, CropWindow]:
    """The crop of `image` that fills `box` (clamped for a small source), and its window."""
    window = choose_window(image, box, content)
    size = output_size((window.width, window.height), box)
    area = (window.x, window.y, window.x + window.width, window.y + window.height)
    if size == (window.width, window.height):
        return image.crop(area), window
    return image.resize(size, FILTER, box=area, reducing_gap=REDUCING_GAP), window


def _best_position(content: np.ndarray, win_w: float, win_h: float) -> tuple[float, float]:
    """The window's position as fractions (0..1) of the free travel on each axis."""
    map_h, map_w = content.shape
    rw, rh = min(map_w, max(1, round(win_w))), min(map_h, max(1, round(win_h)))
    table = np.zeros((map_h + 1, map_w + 1), dtype=np.float64)
    table[1:, 1:] = content.cumsum(axis=0).cumsum(axis=1)
    ys, xs = np.arange(map_h - rh + 1), np.arange(map_w - rw + 1)
    y0, x0 = ys[:, None], xs[None, :]
    scores = table[y0 + rh, x0 + rw] - table[y0, x0 + rw] - table[y0 + rh, x0] + table[y0, x0]
    best = scores.max()
    near_y, near_x = np.nonzero(scores >= best - PLATEAU * max(best, 1e-9))
    # The middle of the near-best positions, snapped to the nearest of them.
    cy, cx = near_y.mean(), near_x.mean()
    pick = int(np.argmin((near_y - cy) ** 2 + (near_x - cx) ** 2))
    py, px = int(near_y[pick]), int(near_x[pick])
    return (px / (len(xs) - 1) if len(xs) > 1 else 0.5), (py / (len(ys) - 1) if len(ys) > 1 else 0.5)


def _sobel(grey: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude, separably: smooth across, difference along (edges repeated)."""
    padded = np.pad(grey, 1, mode="edge")
    rows = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    cols = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    return np.hypot(rows[:, 2:] - rows[:, :-2], cols[2:] - cols[:-2]) / 8.0


def _above_median(values: np.ndarray) -> np.ndarray:
    return np.maximum(values - np.median(values), 0.0)
