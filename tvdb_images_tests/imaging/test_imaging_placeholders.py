"""Placeholders: each hash, decoded back by an independent decoder, looks like the source it came from.

ThumbHash is decoded with the reference crate's decoder (`fast_thumbhash`), BlurHash with woltapp's C
decoder (`blurhash-python`), and our BlurHash encoder is checked character for character against
woltapp's encoder. Sources are the generated corpus's TVDB-shaped photographs and transparent logo,
rendered through `render_renditions`, so the placeholders come from the path the pipeline runs.
"""

from __future__ import annotations

import base64
import re
from functools import cache

import blurhash
import fast_thumbhash
import numpy as np
import pytest
from PIL import Image, ImageOps

from tvdb_images.imaging import RenderResult, RenderSettings, ValidationLimits, render_renditions
from tvdb_images.imaging.placeholders import blurhash_components, compute_placeholders, encode_blurhash
from tvdb_images_tests.support.images import image_cases, image_path

PHOTOS = image_cases(folders=("tvdb",))
LOGO = "edge/clearlogo-transparent.png"
MEAN_LEVELS = 6  # "a few levels" of 0..255, per channel
_LINEAR = np.array(
    [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in np.arange(256) / 255]
)


@cache
def rendered(relative: str) -> RenderResult:
    return render_renditions(image_path(relative).read_bytes(), RenderSettings(), ValidationLimits())


@cache
def source_rgba(relative: str) -> np.ndarray:
    """The upright source as float RGBA 0..255 (what the placeholders must resemble)."""
    with Image.open(image_path(relative)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGBA"), dtype=np.float64)


def weighted_mean(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4] / 255
    return (rgba[..., :3] * alpha).sum(axis=(0, 1)) / alpha.sum()


def linear_mean_as_srgb(rgb: np.ndarray) -> np.ndarray:
    """Mean in linear light, shown as sRGB levels: BlurHash's DC term is exactly this."""
    mean = _LINEAR[np.clip(np.rint(rgb), 0, 255).astype(int)].reshape(-1, 3).mean(axis=0)
    return np.where(mean <= 0.0031308, mean * 12.92, 1.055 * mean ** (1 / 2.4) - 0.055) * 255


def thumbhash_ratio(source: np.ndarray, *, has_alpha: bool) -> float:
    """The aspect ratio a ThumbHash keeps: its component counts along each side (7, or 5 with alpha,
    along the longer one), so a 758x140 banner comes back 7:1, not 5.4:1."""
    height, width = source.shape[:2]
    limit, longer = (5 if has_alpha else 7), max(width, height)
    return max(1, round(limit * width / longer)) / max(1, round(limit * height / longer))


def thumbhash_pixels(encoded: str) -> np.ndarray:
    width, height, rgba = fast_thumbhash.thumb_hash_to_rgba(base64.b64decode(encoded))
    return np.asarray(rgba, dtype=np.float64).reshape(height, width, 4)


@pytest.mark.parametrize("relative", PHOTOS)
def test_thumbhash_decodes_to_the_source_colour_and_aspect_ratio(relative: str) -> None:
    found = rendered(relative).placeholders
    assert found is not None
    source = source_rgba(relative)
    decoded = thumbhash_pixels(found.thumbhash)
    assert np.abs(weighted_mean(decoded) - weighted_mean(source)).max() <= MEAN_LEVELS
    decoded_ratio = decoded.shape[1] / decoded.shape[0]
    # Within the decoder's rounding to whole pixels (at most 32 a side: a 7:1 banner is 32x5).
    assert decoded_ratio == pytest.approx(thumbhash_ratio(source, has_alpha=False), rel=0.12)
    if 1 / 3 <= source.shape[1] / source.shape[0] <= 3:  # not a banner: close to the source's own
        assert decoded_ratio == pytest.approx(source.shape[1] / source.shape[0], rel=0.1)
    assert decoded[..., 3].min() == 255  # an opaque photo stays opaque


@pytest.mark.parametrize("relative", PHOTOS)
def test_blurhash_decodes_to_the_source_colour(relative: str) -> None:
    found = rendered(relative).placeholders
    assert found is not None
    source = source_rgba(relative)
    height = 32
    width = max(1, round(height * source.shape[1] / source.shape[0]))
    decoded = np.asarray(blurhash.decode(found.blurhash, width, height), dtype=np.float64)
    assert decoded.shape == (height, width, 3)
    difference = linear_mean_as_srgb(decoded) - linear_mean_as_srgb(source[..., :3])
    assert np.abs(difference).max() <= MEAN_LEVELS
    size_flag = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".index(found.blurhash[0])
    components = (size_flag % 9 + 1, size_flag // 9 + 1)
    assert components == blurhash_components(source.shape[1], source.shape[0])


@pytest.mark.parametrize("relative", PHOTOS)
def test_dominant_colour_is_a_colour_of_the_source(relative: str) -> None:
    found = rendered(relative).placeholders
    assert found is not None
    assert re.fullmatch(r"#[0-9a-f]{6}", found.dominant_color)
    colour = np.array([int(found.dominant_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    # Some pixel of the source is that colour, give or take the histogram's bin (32 levels).
    nearest = np.abs(source_rgba(relative)[..., :3] - colour).max(axis=2).min()
    assert nearest <= 16


def test_transparent_logo_keeps_its_alpha_in_the_thumbhash() -> None:
    found = rendered(LOGO).placeholders
    assert found is not None
    source = source_rgba(LOGO)
    decoded = thumbhash_pixels(found.thumbhash)
    alpha = decoded[..., 3]
    # The keyed-out background is scattered through the logo; ThumbHash keeps its low frequencies.
    reduced = Image.fromarray(source.astype(np.uint8), "RGBA").resize(alpha.shape[::-1], Image.Resampling.BOX)
    expected = np.asarray(reduced, dtype=np.float64)[..., 3]
    assert np.corrcoef(expected.ravel(), alpha.ravel())[0, 1] > 0.6
    assert alpha.min() < 160 and alpha.max() == 255
    assert alpha.mean() == pytest.approx(source[..., 3].mean(), abs=0.1 * 255)
    assert decoded.shape[1] / decoded.shape[0] == pytest.approx(
        thumbhash_ratio(source, has_alpha=True), rel=0.12
    )
    assert np.abs(weighted_mean(decoded) - weighted_mean(source)).max() <= 3 * MEAN_LEVELS


def test_a_logo_on_a_transparent_margin_keeps_the_margin_transparent() -> None:
    pixels = np.zeros((310, 465, 4), dtype=np.uint8)
    pixels[90:220, 120:345] = (230, 180, 20, 255)  # an opaque wordmark in the middle
    decoded = thumbhash_pixels(compute_placeholders(Image.fromarray(pixels, "RGBA")).thumbhash)
    alpha = decoded[..., 3]
    height, width = alpha.shape
    assert max(alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]) < 64
    assert alpha[height // 2, width // 2] > 192
    centre = decoded[height // 2, width // 2, :3]
    assert np.abs(centre - (230, 180, 20)).max() <= 3 * MEAN_LEVELS


def test_dominant_colour_ignores_transparent_pixels_and_follows_the_majority() -> None:
    pixels = np.zeros((90, 160, 4), dtype=np.uint8)
    pixels[...] = (0, 255, 0, 0)  # a transparent margin whose RGB is vivid green
    pixels[20:70, 10:110] = (200, 30, 40, 255)  # the larger, opaque area
    pixels[20:70, 110:150] = (20, 40, 220, 255)
    found = compute_placeholders(Image.fromarray(pixels, "RGBA"))
    assert found.dominant_color == "#c81e28"


def test_greyscale_and_grey_alpha_sources_get_placeholders() -> None:
    grey = Image.linear_gradient("L").resize((300, 169))
    found = compute_placeholders(grey)
    colour = found.dominant_color
    assert colour[1:3] == colour[3:5] == colour[5:7]  # a grey
    with_alpha = grey.convert("LA")
    with_alpha.putalpha(Image.linear_gradient("L").resize((300, 169)))
    assert thumbhash_pixels(compute_placeholders(with_alpha).thumbhash)[..., 3].min() < 64


@pytest.mark.parametrize("components", [(1, 1), (4, 3), (6, 4), (9, 2), (2, 9)])
def test_blurhash_encoder_matches_woltapps_encoder(components: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    pixels = Image.fromarray((rng.random((56, 100, 3)) * 255).astype(np.uint8), "RGB")
    ours = encode_blurhash(np.asarray(pixels, dtype=np.float64), *components)
    assert ours == blurhash.encode(pixels.copy(), *components)  # their encoder closes what it is given


def test_blurhash_components_follow_jellyfins_rule() -> None:
    assert blurhash_components(1920, 1080) == (6, 4)  # fanart
    assert blurhash_components(680, 1000) == (4, 5)  # poster
    assert blurhash_components(758, 140) == (9, 2)  # banner
    assert blurhash_components(1, 1000) == (1, 9)


def test_placeholders_share_the_smallest_renditions_aspect_ratio() -> None:
    first = PHOTOS[0] if isinstance(PHOTOS[0], str) else PHOTOS[0].values[0]  # type: ignore[union-attr]
    result = rendered(first)
    assert result.placeholders is not None
    smallest = min(result.renditions, key=lambda r: r.width * r.height)
    # The thumbhash's aspect ratio is the smallest rendition's, which is the source's.
    width, height, _ = fast_thumbhash.thumb_hash_to_rgba(base64.b64decode(result.placeholders.thumbhash))
    smallest_pixels = np.zeros((smallest.height, smallest.width, 4))
    assert width / height == pytest.approx(thumbhash_ratio(smallest_pixels, has_alpha=False), rel=0.12)


def test_opaque_pixels_get_the_same_placeholders_as_their_rgba_with_an_opaque_alpha() -> None:
    # RGB (and opaque RGBA) take the unweighted integer path; one pixel at alpha 254 sends the same
    # pixels down the alpha-weighted float path, which must land on the same BlurHash and colour.
    rgb = Image.open(image_path("tvdb/episode_a.jpg")).convert("RGB").resize((64, 36))
    as_rgba = rgb.convert("RGBA")
    assert compute_placeholders(rgb) == compute_placeholders(as_rgba)
    weighted = np.asarray(as_rgba).copy()
    weighted[0, 0, 3] = 254  # one pixel below opaque: the alpha-weighted path
    almost = compute_placeholders(Image.fromarray(weighted, "RGBA"))
    assert almost.blurhash == compute_placeholders(rgb).blurhash
    assert almost.dominant_color == compute_placeholders(rgb).dominant_color
