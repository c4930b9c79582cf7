"""What a client paints before an artwork loads: a ThumbHash, a BlurHash and a dominant colour.

All three come from the pixels the render step already holds: its smallest rendition (the 300x169
`thumbnail` box), box-reduced once to fit `PLACEHOLDER_BOX`, so they cost no second download or
decode. 48x48 rather than ThumbHash's limit of 100x100: its at most 7 components a side need no
more, and the encoder's cost grows with the pixels (1.2 ms at 100 px, 0.3 ms at 48; CPU time per call
on the loaded 2-core box, load average 12-13); the placeholders then cost 0.43-0.80 ms per artwork
inside a render, at most 2.5% of one (`python -m benchmarks.engine --placeholders`, load 4-6). There,
just after the WebP encoder, each numpy call costs tens of microseconds whatever its size, so the
code below makes few of them: one copy of the pixels, no weights or floats for opaque pixels.

- **ThumbHash** (base64, about 25 bytes): keeps alpha and the aspect ratio (as far as its component
  counts do: a 5.4:1 banner comes back 7:1); the encoder is `fast-thumbhash`, a binding of the
  reference `thumbhash` crate by ThumbHash's author. The pure-Python port (`thumbhash-python`) took
  45 ms per call on a 100x56 thumbnail.
- **BlurHash** (base83): what Jellyfin's clients already decode. The encoder is the short numpy one
  below (0.2 ms), character for character the reference's output: woltapp's `blurhash-python` (C core)
  spent 5.6 ms on a 100x56 thumbnail copying pixels through Python lists and closes the image it is
  handed; `blurhash` is pure Python. The tests decode ours with `blurhash-python`'s decoder, an
  independent implementation. Components follow Jellyfin's own rule (tiles close to square, about 16
  of them). BlurHash has no alpha: transparent pixels are painted in the image's alpha-weighted mean
  colour, as ThumbHash does.
- **Dominant colour** (`#rrggbb`): the mean colour of the most populated bin of a 3-bit-per-channel
  histogram, weighted by alpha, so a logo's transparent margin does not count.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from functools import lru_cache

import fast_thumbhash
import numpy as np
from PIL import Image

from .sizes import fit_inside

__all__ = ["PLACEHOLDER_BOX", "Placeholders", "blurhash_components", "compute_placeholders"]

PLACEHOLDER_BOX = (48, 48)  # the pixels every placeholder is computed from (ThumbHash takes <= 100x100)
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB_TO_LINEAR = np.array(
    [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in np.arange(256) / 255.0]
)
_DOMINANT_BITS = 3
_OPAQUE_MODES = frozenset({"L", "RGB"})


@dataclass(frozen=True)
class Placeholders:
    thumbhash: str  # base64 of the ThumbHash bytes
    blurhash: str
    dominant_color: str  # "#rrggbb"


def compute_placeholders(pixels: Image.Image) -> Placeholders:
    """The three placeholders of working pixels (L, LA, RGB or RGBA, upright, sRGB), of any size."""
    size = fit_inside(pixels.width, pixels.height, PLACEHOLDER_BOX)
    small = pixels.resize(size, Image.Resampling.BOX) if pixels.size != size else pixels
    small = small.convert("RGBA")  # after the resize: fewer pixels to convert
    # One copy of the pixels serves all three: `np.asarray(image)` would copy them out a second time.
    data = small.tobytes()
    rgba = np.frombuffer(data, dtype=np.uint8).reshape(small.height, small.width, 4)
    thumbhash = fast_thumbhash.rgba_to_thumb_hash(small.width, small.height, data)
    rgb, alpha = rgba[..., :3], rgba[..., 3]
    components = blurhash_components(pixels.width, pixels.height)
    # Opaque, as most artwork is (working pixels without alpha are opaque by construction): no
    # weights and no floats, for the same results.
    if pixels.mode in _OPAQUE_MODES or alpha.min() == 255:
        blurhash = encode_blurhash(rgb, *components)
        dominant = _dominant_color(rgb, None)
    else:
        weights = alpha / 255.0
        blurhash = encode_blurhash(_over_mean(rgb.astype(np.float64), weights), *components)
        dominant = _dominant_color(rgb, weights if alpha.max() > 0 else None)
    return Placeholders(
        thumbhash=base64.b64encode(bytes(thumbhash)).decode("ascii"),
        blurhash=blurhash,
        dominant_color=dominant,
    )


def blurhash_components(width: int, height: int) -> tuple[int, int]:
    """Jellyfin's rule: tiles as close to square as possible, about 16 of them, at most 9 a side."""
    x = math.sqrt(16.0 * width / height)
    y = x * height / width
    return min(int(x) + 1, 9), min(int(y) + 1, 9)


def encode_blurhash(rgb: np.ndarray, components_x: int, components_y: int) -> str:
    """BlurHash of an (height, width, 3) array of sRGB values 0..255 (the reference algorithm)."""
    height, width, _ = rgb.shape
    levels = rgb if rgb.dtype == np.uint8 else np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    linear = _SRGB_TO_LINEAR[levels]
    basis_x, basis_y = _basis(width, components_x), _basis(height, components_y)
    # factors[j, i] = sum over pixels of basis_y[j, y] * basis_x[i, x] * linear[y, x], as two products
    by_column = (basis_y @ linear.reshape(height, width * 3)).reshape(components_y, width, 3)
    factors = (basis_x @ by_column).reshape(-1, 3) / (width * height)
    dc, ac = factors[0], factors[1:] * 2.0  # the AC components' normalisation is 2
    out = [_base83((components_x - 1) + (components_y - 1) * 9, 1)]
    magnitude = np.abs(ac)
    if len(ac):
        quantised_max = max(0, min(82, math.floor(float(magnitude.max()) * 166 - 0.5)))
        maximum = (quantised_max + 1) / 166
    else:
        quantised_max, maximum = 0, 1.0
    out.append(_base83(quantised_max, 1))
    r, g, b = (_linear_to_srgb(float(v)) for v in dc)
    out.append(_base83((r << 16) + (g << 8) + b, 4))
    # sign(v) * sqrt(|v|) of v = ac / maximum; |ac| / maximum is |ac / maximum| exactly (maximum > 0).
    root = np.copysign(np.sqrt(magnitude / maximum), ac)
    quantised = np.clip(np.floor(root * 9 + 9.5), 0, 18).astype(np.intp)
    for qr, qg, qb in quantised.tolist():  # a few dozen components: plain Python beats more numpy calls
        value = qr * 19 * 19 + qg * 19 + qb
        out.append(_BASE83[value // 83] + _BASE83[value % 83])
    return "".join(out)


@lru_cache(maxsize=256)
def _basis(length: int, components: int) -> np.ndarray:
    """cos(pi * i * x / length) for each component i and pixel x: placeholder boxes repeat a few
    shapes, so each is computed once."""
    basis = np.cos(np.pi / length * np.arange(components)[:, None] * np.arange(length))
    basis.setflags(write=False)
    return basis


def _over_mean(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Pixels composited over the image's alpha-weighted mean colour (unchanged where opaque)."""
    if alpha.min() >= 1.0:
        return rgb
    weight = alpha.sum()
    mean = (rgb * alpha[..., None]).sum(axis=(0, 1)) / weight if weight > 0 else rgb.mean(axis=(0, 1))
    return rgb * alpha[..., None] + mean * (1.0 - alpha[..., None])


def _dominant_color(rgb: np.ndarray, alpha: np.ndarray | None) -> str:
    """`alpha` (0..1) weighs each pixel; None counts every pixel once (opaque or fully transparent)."""
    shift = 8 - _DOMINANT_BITS
    bins = rgb >> shift  # uint8, each channel's bin
    index = (
        (bins[..., 0].astype(np.intp) << (2 * _DOMINANT_BITS))
        | (bins[..., 1] << _DOMINANT_BITS)
        | bins[..., 2]
    )
    flat_index = index.ravel()
    flat_weights = None if alpha is None else alpha.ravel()
    counts = np.bincount(flat_index, weights=flat_weights, minlength=1 << (3 * _DOMINANT_BITS))
    chosen = flat_index == int(counts.argmax())
    members = rgb.reshape(-1, 3)[chosen]
    if flat_weights is None:  # integer sums: exact, as the float sums of whole numbers they replace
        mean = members.sum(axis=0, dtype=np.int64) / len(members)
    else:
        member_weights = flat_weights[chosen]
        mean = (members * member_weights[:, None]).sum(axis=0) / member_weights.sum()
    return "#" + "".join(f"{round(float(v)):02x}" for v in mean)


def _linear_to_srgb(value: float) -> int:
    v = min(1.0, max(0.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))
