"""The perceptual hash: stable under re-encoding and resizing, far apart for different pictures, equal
to imagehash's pHash where imagehash is installed, and computed by every render."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image

from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions
from tvdb_images.imaging.perceptual import hamming, perceptual_hash, to_signed, to_unsigned
from tvdb_images_tests.support.images.photos import SAMPLES, encoded, shaped

PHOTOS = [name for name in SAMPLES if name != "logo"]


def _decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize("name", PHOTOS)
def test_a_reencoded_or_resized_copy_hashes_within_a_few_bits(name: str) -> None:
    original = shaped(name, 1280, 720)
    reference = perceptual_hash(original)
    copies = [
        _decoded(encoded(original, "JPEG", quality=40)),
        _decoded(encoded(original, "WEBP", quality=50)),
        original.resize((640, 360), Image.Resampling.LANCZOS),
        _decoded(encoded(original.resize((427, 240), Image.Resampling.BICUBIC), "JPEG", quality=60)),
    ]
    for copy in copies:
        assert hamming(reference, perceptual_hash(copy)) <= 4


def test_different_pictures_are_far_apart() -> None:
    hashes = {name: perceptual_hash(shaped(name, 1280, 720)) for name in PHOTOS}
    for a, b in itertools.combinations(PHOTOS, 2):
        assert hamming(hashes[a], hashes[b]) >= 16, (a, b)


def test_the_hash_is_64_bits_half_set_and_stored_signed() -> None:
    value = perceptual_hash(shaped("astronaut", 640, 360))
    assert 0 <= value < 1 << 64
    assert 24 <= value.bit_count() <= 40  # the median splits the 64 coefficients (the DC term is set)
    signed = to_signed(value)
    assert -(1 << 63) <= signed < 1 << 63 and to_unsigned(signed) == value
    assert hamming(signed, value) == 0


def test_equal_to_imagehash_phash() -> None:
    imagehash = pytest.importorskip("imagehash")
    for name in PHOTOS:
        for size in ((1280, 720), (300, 169), (680, 1000)):
            image = shaped(name, *size)
            assert perceptual_hash(image) == int(str(imagehash.phash(image)), 16), (name, size)


def test_every_render_computes_it_from_its_smallest_size() -> None:
    source = encoded(shaped("coffee", 1920, 1080), "JPEG", quality=90)
    smaller = encoded(shaped("coffee", 960, 540), "JPEG", quality=60)
    first = render_renditions(source, RenderSettings(), ValidationLimits())
    second = render_renditions(smaller, RenderSettings(), ValidationLimits())
    assert first.perceptual_hash is not None and second.perceptual_hash is not None
    assert hamming(first.perceptual_hash, second.perceptual_hash) <= 4
    other = render_renditions(
        encoded(shaped("rocket", 1920, 1080), "JPEG"), RenderSettings(), ValidationLimits()
    )
    assert other.perceptual_hash is not None
    assert hamming(first.perceptual_hash, other.perceptual_hash) >= 16
