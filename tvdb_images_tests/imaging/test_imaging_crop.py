"""Exact-box crops (`imaging.crop`, CROP_RENDITIONS): placed on the subject, not the centre; never
upscaled; rendered, encoded and signed with the other sizes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tvdb_images.imaging import (
    ENGINE_VERSION,
    RenderSettings,
    ValidationLimits,
    render_renditions,
    render_settings_signature,
)
from tvdb_images.imaging.crop import CropWindow, choose_window, crop_to_box, output_size, window_size
from tvdb_images.imaging.watermark import load_watermark
from tvdb_images.registry import parse_crop_renditions
from tvdb_images_tests.support.images.subjects import (
    centre_window,
    encoded,
    flat_picture,
    kept,
    subject_picture,
)

CROPS = parse_crop_renditions("card:342x513,still:400x225,avatar:300x300")
BOXES = {row.name: row.box for row in CROPS}

# (picture size, subject centre, radius, crop): every subject sits where a centre crop misses most of it.
OFF_CENTRE = [
    pytest.param((1600, 900), (1300, 420), 150, "card", id="landscape-right-card"),
    pytest.param((1600, 900), (200, 450), 150, "avatar", id="landscape-left-avatar"),
    pytest.param((1600, 900), (1350, 600), 120, "avatar", id="landscape-low-right-avatar"),
    pytest.param((900, 1400), (450, 230), 140, "still", id="portrait-top-still"),
    pytest.param((900, 1400), (300, 1150), 150, "avatar", id="portrait-bottom-avatar"),
    pytest.param((1000, 1000), (820, 500), 120, "card", id="square-right-card"),
]


@pytest.mark.parametrize("noisy", [False, True], ids=["plain", "noisy"])
@pytest.mark.parametrize(("size", "centre", "radius", "crop"), OFF_CENTRE)
def test_crop_keeps_the_subject_a_centre_crop_loses(
    size: tuple[int, int], centre: tuple[int, int], radius: int, crop: str, noisy: bool
) -> None:
    picture = subject_picture(size, centre, radius, noisy=noisy)
    window = choose_window(picture.image, BOXES[crop])
    centred = centre_window(size, (window.width, window.height))
    assert (window.width, window.height) == window_size(*size, BOXES[crop])
    assert kept(picture.mask, window) >= 0.9, window
    assert kept(picture.mask, centred) < 0.9
    assert kept(picture.mask, centred) < kept(picture.mask, window)


def test_subject_that_fits_is_not_pushed_to_the_window_edge() -> None:
    """Among windows holding all of the subject, the middle one: the disc has margin on both sides."""
    picture = subject_picture((1600, 900), (1100, 450), 120, noisy=False)
    window = choose_window(picture.image, BOXES["card"])  # 600 wide: 480 px of travel hold the disc
    left, right = 1100 - 120 - window.x, window.x + window.width - (1100 + 120)
    assert left > 60 and right > 60, window


def test_flat_image_gets_a_centre_crop() -> None:
    window = choose_window(flat_picture((1600, 900)), BOXES["card"])
    assert window == CropWindow(*centre_window((1600, 900), (600, 900)))


def test_window_is_the_largest_of_the_box_aspect() -> None:
    assert window_size(1600, 900, (342, 513)) == (600, 900)
    assert window_size(1600, 900, (400, 225)) == (1600, 900)
    assert window_size(900, 1400, (400, 225)) == (900, 506)
    assert window_size(1, 1000, (300, 300)) == (1, 1)


def test_small_source_is_never_upscaled_the_box_is_clamped() -> None:
    """A source smaller than the box gives the window at the source's scale, in the box's shape."""
    picture = subject_picture((200, 150), (150, 75), 30, noisy=False)
    image, window = crop_to_box(picture.image, (342, 513))
    assert (window.width, window.height) == (100, 150)
    assert image.size == (100, 150) == output_size((100, 150), (342, 513))
    assert kept(picture.mask, window) >= 0.9
    # One side smaller than the box is enough to clamp.
    assert output_size((600, 300), (400, 400)) == (600, 300)


def test_render_makes_the_crops_after_the_sizes_with_their_windows() -> None:
    picture = subject_picture((1600, 900), (1300, 420), 150, noisy=True)
    settings = RenderSettings(crops=CROPS)
    for fmt in ("PNG", "JPEG"):
        result = render_renditions(encoded(picture.image, fmt), settings, ValidationLimits())
        names = [r.size for r in result.renditions]
        assert names == ["original", "large", "medium", "small", "thumbnail", "card", "still", "avatar"]
        for rendition in result.renditions[5:]:
            assert (rendition.width, rendition.height) == BOXES[rendition.size]
            assert rendition.crop is not None and kept(picture.mask, rendition.crop) >= 0.9
            with Image.open(io.BytesIO(rendition.data)) as image:
                assert image.format == "WEBP" and image.size == BOXES[rendition.size]
        assert all(r.crop is None for r in result.renditions[:5])


def test_render_of_an_exif_rotated_source_records_upright_windows() -> None:
    """The window is in upright pixels: a portrait stored sideways (orientation 6) crops like a portrait."""
    picture = subject_picture((900, 1400), (450, 230), 140, noisy=False)
    stored = picture.image.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    result = render_renditions(buffer.getvalue(), RenderSettings(crops=CROPS), ValidationLimits())
    still = next(r for r in result.renditions if r.size == "still")
    assert still.crop is not None and (still.crop.width, still.crop.height) == (900, 506)
    assert kept(picture.mask, still.crop) >= 0.9


def test_signature_changes_with_the_crops() -> None:
    plain = render_settings_signature(RenderSettings())
    with_crops = render_settings_signature(RenderSettings(crops=CROPS))
    changed = render_settings_signature(RenderSettings(crops=parse_crop_renditions("card:342x514")))
    reordered = render_settings_signature(RenderSettings(crops=CROPS[::-1]))
    assert plain == f"webp-q85-m4-v{ENGINE_VERSION}"
    assert with_crops.startswith(plain + "-c") and len(with_crops) <= 64
    assert len({plain, with_crops, changed}) == 3
    assert reordered != plain


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thumbnail:300x300", "built-in size"),
        ("manifest:300x300", "reserved"),
        ("card:342x513,card:100x100", "twice"),
        ("card:8x513", "16..4096"),
        ("card:342x5000", "16..4096"),
        ("Card:342x513", "name:WIDTHxHEIGHT"),
        ("card=342x513", "name:WIDTHxHEIGHT"),
        ("averyveryverylongname:342x513", "name:WIDTHxHEIGHT"),
    ],
)
def test_bad_crop_settings_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_crop_renditions(text)


def test_crop_settings_parse_in_order() -> None:
    assert [(r.name, r.box, r.fit) for r in parse_crop_renditions(" card:342x513 , avatar:300x300,")] == [
        ("card", (342, 513), "crop"),
        ("avatar", (300, 300), "crop"),
    ]
    assert parse_crop_renditions("") == ()


def test_crops_come_in_every_format_from_one_window_and_carry_a_listed_watermark(tmp_path: Path) -> None:
    mark_path = tmp_path / "mark.png"
    Image.new("RGBA", (64, 32), (255, 0, 0, 255)).save(mark_path)
    mark = load_watermark(mark_path, sizes=("small", "card"), opacity=1.0)
    picture = subject_picture((1600, 900), (1300, 420), 150, noisy=False)
    data = encoded(picture.image, "PNG")
    formats = [RenderSettings(format=name, crops=CROPS, watermark=mark) for name in ("webp", "avif")]
    result = render_renditions(data, formats, ValidationLimits())
    crops = [r for r in result.renditions if r.crop is not None]
    assert [(r.size, r.format) for r in crops] == [(row.name, f) for row in CROPS for f in ("webp", "avif")]
    for name in BOXES:
        windows = {r.crop for r in crops if r.size == name}
        assert len(windows) == 1  # one placement serves every format
    signatures = {render_settings_signature(f) for f in formats}
    assert all("-c" in s and "-w" in s for s in signatures) and len(signatures) == 2
    assert result.placeholders is not None
    clean = render_renditions(data, [RenderSettings(crops=CROPS)], ValidationLimits())
    by_name = {r.size: r for r in clean.renditions}
    marked = {r.size: r for r in result.renditions if r.format == "webp"}
    assert marked["card"].data != by_name["card"].data  # listed: watermarked
    assert marked["avatar"].data == by_name["avatar"].data  # not listed: untouched


def test_a_watermark_naming_an_unconfigured_crop_is_refused(tmp_path: Path) -> None:
    mark_path = tmp_path / "mark.png"
    Image.new("RGBA", (64, 32), (255, 0, 0, 255)).save(mark_path)
    with pytest.raises(ValueError, match="poster"):
        RenderSettings(crops=CROPS, watermark=load_watermark(mark_path, sizes=("poster",)))
