"""Rendering: sizes, orientation, colours, alpha, shared outputs and output formats on the generated
images (and on the shared corpus, when present: cases marked `corpus`)."""

from __future__ import annotations

import io
import pickle
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat, features

from tvdb_images.imaging import (
    SIZE_BOXES,
    ImageRejected,
    RenderResult,
    RenderSettings,
    ValidationLimits,
    fit_inside,
    render_renditions,
    render_settings_signature,
)
from tvdb_images_tests.support.images import image_cases, image_path
from tvdb_images_tests.support.images.edge import ALPHA_FILES, ANIMATED_FILES, ORIENTED

LIMITS = ValidationLimits()
WEBP = RenderSettings()


RENDERABLE = image_cases(folders=("tvdb", "edge"))
ALPHA_SOURCES = image_cases(*(f"edge/{name}" for name in ALPHA_FILES))


def case_name(case: object) -> str:
    """The relative path of a case, whether a plain string or a `pytest.param`."""
    return case if isinstance(case, str) else case.values[0]  # type: ignore[attr-defined]


def has_alpha(case: object) -> bool:
    return Path(case_name(case)).name in ALPHA_FILES


@cache
def rendered(relative: str, settings: RenderSettings = WEBP) -> RenderResult:
    """Render once per file and settings; several tests look at the same result."""
    return render_renditions(image_path(relative).read_bytes(), settings, LIMITS)


@cache
def source_upright(relative: str) -> Image.Image:
    with Image.open(image_path(relative)) as image:
        return ImageOps.exif_transpose(image)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    difference = ImageChops.difference(a, b)
    return sum(ImageStat.Stat(difference).mean) / len(difference.getbands())


def to_srgb(image: Image.Image) -> Image.Image:
    """Reference colour conversion: through the embedded ICC profile, as the engine promises."""
    icc = image.info.get("icc_profile")
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")


# --- every valid corpus file ----------------------------------------------------------------------


def test_generated_corpus_has_every_kind_of_file_to_render() -> None:
    names = {case_name(case) for case in RENDERABLE}
    assert {"tvdb/fanart_a.jpg", "tvdb/fanart_4k.jpg", "tvdb/clearlogo_a.png", "edge/pitm.avif"} <= names
    assert {f"edge/{name}" for name in (*ALPHA_FILES, *ANIMATED_FILES, *ORIENTED)} <= names


@pytest.mark.parametrize("relative", RENDERABLE)
def test_every_size_has_the_expected_dimensions(relative: str) -> None:
    result = rendered(relative)
    upright_w, upright_h = source_upright(relative).size
    assert [r.size for r in result.renditions] == list(SIZE_BOXES)
    for rendition in result.renditions:
        box = SIZE_BOXES[rendition.size]
        assert (rendition.width, rendition.height) == fit_inside(upright_w, upright_h, box)
        assert rendition.width <= upright_w and rendition.height <= upright_h  # never upscaled
        if box is not None:
            assert rendition.width <= box[0] and rendition.height <= box[1]
        assert abs(rendition.width * upright_h - rendition.height * upright_w) <= max(upright_w, upright_h)
        image = decoded(rendition.data)
        assert image.format == "WEBP"
        assert image.size == (rendition.width, rendition.height)
        assert (rendition.format, rendition.mime, rendition.extension) == ("webp", "image/webp", "webp")


@pytest.mark.parametrize("relative", RENDERABLE)
def test_outputs_carry_no_metadata(relative: str) -> None:
    for rendition in rendered(relative).renditions:
        image = decoded(rendition.data)
        assert "exif" not in image.info and "icc_profile" not in image.info and "xmp" not in image.info
        assert not image.getexif()


@pytest.mark.parametrize("relative", RENDERABLE)
def test_source_info_is_reported(relative: str) -> None:
    data = image_path(relative).read_bytes()
    source = rendered(relative).source
    with Image.open(image_path(relative)) as image:
        assert (source.width, source.height) == image.size
    assert source.byte_size == len(data)
    assert source.extension == Path(relative).suffix.lower().lstrip(".").replace("jpeg", "jpg")


# --- orientation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative", image_cases("edge/Landscape_6.jpg", "edge/Portrait_8.jpg", *(f"edge/{n}" for n in ORIENTED))
)
def test_exif_orientation_is_applied(relative: str) -> None:
    with Image.open(image_path(relative)) as stored:
        stored_size = stored.size
        turned = stored.getexif().get(0x0112) in (5, 6, 7, 8)
        as_stored = to_srgb(stored)
        upright = to_srgb(ImageOps.exif_transpose(stored))
    original = rendered(relative).renditions[0]
    assert (original.width, original.height) == (stored_size[::-1] if turned else stored_size)
    pixels = decoded(original.data)
    assert mean_abs_diff(pixels, upright) < 6
    assert mean_abs_diff(pixels, upright.transpose(Image.Transpose.ROTATE_180)) > 30
    if not turned:  # mirrored or upside down as stored: the output must not be the stored pixels
        assert mean_abs_diff(pixels, as_stored) > mean_abs_diff(pixels, upright) + 10
    for rendition in rendered(relative).renditions[1:]:
        small = decoded(rendition.data)
        reference = upright.resize(small.size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        assert mean_abs_diff(small, reference) < 6


# --- colours -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", image_cases("edge/Channel_digital_image_CMYK_color.jpg"))
def test_cmyk_with_a_profile_is_converted_through_it(relative: str) -> None:
    with Image.open(image_path(relative)) as cmyk:
        cmyk.load()
        reference = to_srgb(cmyk)
        naive = cmyk.convert("RGB")
    for rendition in rendered(relative).renditions:
        image = decoded(rendition.data)
        assert image.mode == "RGB"
        expected = reference.resize(image.size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        assert mean_abs_diff(image, expected) < 5
    original = decoded(rendered(relative).renditions[0].data)
    assert mean_abs_diff(original, naive) > mean_abs_diff(original, reference) + 5


@pytest.mark.parametrize("relative", image_cases("edge/concert.jpg"))
def test_greyscale_stays_grey(relative: str) -> None:
    for rendition in rendered(relative).renditions:
        red, green, blue = decoded(rendition.data).convert("RGB").split()
        for a, b in ((red, green), (green, blue)):
            difference = ImageChops.difference(a, b)
            assert difference.getextrema()[1] <= 4
            assert ImageStat.Stat(difference).mean[0] < 0.5


@pytest.mark.parametrize("relative", ALPHA_SOURCES)
def test_alpha_is_kept_where_the_source_has_it(relative: str) -> None:
    with Image.open(image_path(relative)) as source:
        alpha = source.convert("RGBA").getchannel("A")
    for rendition in rendered(relative).renditions:
        image = decoded(rendition.data)
        assert image.mode == "RGBA"
        expected = alpha.resize(image.size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        got = image.getchannel("A")
        assert mean_abs_diff(got, expected) < 2
        transparent = expected.point(lambda v: 255 if v == 0 else 0).histogram()[255]
        still_transparent = got.point(lambda v: 255 if v == 0 else 0).histogram()[255]
        assert abs(transparent - still_transparent) <= 0.01 * image.width * image.height + 2


@pytest.mark.parametrize("relative", image_cases("edge/full-transparent.png"))
def test_fully_transparent_source_stays_fully_transparent(relative: str) -> None:
    for rendition in rendered(relative).renditions:
        assert decoded(rendition.data).getchannel("A").getextrema() == (0, 0)


@pytest.mark.parametrize("relative", [case for case in RENDERABLE if not has_alpha(case)])
def test_opaque_sources_have_no_alpha_channel(relative: str) -> None:
    for rendition in rendered(relative).renditions:
        assert decoded(rendition.data).mode == "RGB"


@pytest.mark.parametrize("relative", image_cases("tvdb/clearlogo_a.png"))
def test_an_alpha_channel_that_is_fully_opaque_is_dropped(relative: str) -> None:
    """clearlogo_a.png is stored RGBA, but every alpha value is 255: no transparency to keep."""
    with Image.open(image_path(relative)) as source:
        assert source.mode == "RGBA"
        assert source.getchannel("A").getextrema() == (255, 255)
    assert {decoded(r.data).mode for r in rendered(relative).renditions} == {"RGB"}


@pytest.mark.parametrize("relative", image_cases(*(f"edge/{name}" for name in ANIMATED_FILES)))
def test_animated_sources_render_their_first_frame(relative: str) -> None:
    with Image.open(image_path(relative)) as source:
        first = source.convert("RGB")
        source.seek(5)
        later = source.convert("RGB")
    original = decoded(rendered(relative).renditions[0].data)
    assert mean_abs_diff(original, first) < mean_abs_diff(original, later)
    assert mean_abs_diff(original, first) < 4


# --- identical sizes are encoded once -----------------------------------------------------------------


def test_a_1080p_source_is_its_own_large() -> None:
    original, large, medium, *_ = rendered("tvdb/fanart_a.jpg").renditions
    assert (original.width, original.height, original.shared_with) == (1920, 1080, None)
    assert large.shared_with == "original" and large.data is original.data
    assert medium.shared_with is None and (medium.width, medium.height) == (1280, 720)


def test_an_episode_image_is_its_own_large_medium_and_small() -> None:
    renditions = {r.size: r for r in rendered("tvdb/episode_a.jpg").renditions}
    assert renditions["original"].shared_with is None
    for size in ("large", "medium", "small"):
        assert renditions[size].shared_with == "original"
        assert renditions[size].data is renditions["original"].data
    assert renditions["thumbnail"].shared_with is None
    assert (renditions["thumbnail"].width, renditions["thumbnail"].height) == (300, 169)


def test_a_tiny_source_is_encoded_once() -> None:
    renditions = rendered("edge/2x2_fdcce6.png").renditions
    assert [r.shared_with for r in renditions] == [None] + ["original"] * 4


# --- rendering quality, against plain Pillow ------------------------------------------------------


@pytest.mark.parametrize(
    "relative", image_cases("tvdb/poster_a.jpg", "tvdb/fanart_c.jpg", "tvdb/banner_a.jpg")
)
def test_renditions_look_like_plain_pillow_thumbnails(relative: str) -> None:
    for rendition in rendered(relative).renditions:
        with Image.open(image_path(relative)) as plain:
            box = SIZE_BOXES[rendition.size]
            if box is not None:
                plain.thumbnail(box)
            plain = plain.convert("RGB")
        assert plain.size == (rendition.width, rendition.height)
        assert mean_abs_diff(decoded(rendition.data), plain) < 4


@pytest.mark.parametrize(
    "relative", image_cases("tvdb/fanart_a.jpg", "tvdb/poster_b.jpg", "tvdb/fanart_4k.jpg")
)
def test_renditions_are_byte_for_byte_plain_pillow_output(relative: str) -> None:
    """Same pixels as `thumbnail()`, reduced-scale JPEG decoding included, so the same WebP bytes;
    only a 4K source's `large` (decoded at 1/2 scale) and `medium` (resampled from it) differ."""
    data = image_path(relative).read_bytes()
    for rendition in rendered(relative).renditions:
        with Image.open(io.BytesIO(data)) as plain:
            box = SIZE_BOXES[rendition.size]
            if box is not None:
                plain.thumbnail(box)
            buffer = io.BytesIO()
            plain.save(buffer, "WEBP", quality=WEBP.quality, method=WEBP.webp_method)
        if relative.endswith("tvdb/fanart_4k.jpg") and rendition.size in ("large", "medium"):
            assert mean_abs_diff(decoded(rendition.data), decoded(buffer.getvalue())) < 2
        else:
            assert rendition.data == buffer.getvalue(), rendition.size


# --- settings, formats and signatures -------------------------------------------------------------


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
@pytest.mark.parametrize(
    ("relative", "mode"),
    [("tvdb/person_a.jpg", "RGB"), ("edge/concert.jpg", "L"), ("edge/grey-8bit-alpha.png", "RGBA")],
)
def test_avif_output(relative: str, mode: str) -> None:
    result = rendered(relative, RenderSettings(format="avif", sizes=("small", "thumbnail")))
    assert [r.size for r in result.renditions] == ["small", "thumbnail"]
    for rendition in result.renditions:
        assert (rendition.format, rendition.mime, rendition.extension) == ("avif", "image/avif", "avif")
        image = decoded(rendition.data)
        assert image.format == "AVIF"
        assert image.size == (rendition.width, rendition.height)
        assert image.mode == mode
        assert "icc_profile" not in image.info and not image.getexif()


def test_quality_changes_the_signature_and_the_bytes() -> None:
    low, high = RenderSettings(quality=60), RenderSettings(quality=90)
    assert render_settings_signature(RenderSettings()) == "webp-q85-m4-v3"
    assert render_settings_signature(low) != render_settings_signature(high)
    assert render_settings_signature(RenderSettings(webp_method=6)) != render_settings_signature(
        RenderSettings()
    )
    assert render_settings_signature(RenderSettings(format="avif")) == "avif-q85-s8-v3"
    assert render_settings_signature(RenderSettings(format="avif", avif_speed=6)) == "avif-q85-s6-v3"
    small = rendered("tvdb/person_a.jpg", low).renditions[0].data
    assert len(small) < len(rendered("tvdb/person_a.jpg", high).renditions[0].data)


def test_a_selection_of_sizes_has_its_own_signature() -> None:
    chosen = RenderSettings(sizes=("thumbnail", "small"))
    assert render_settings_signature(chosen) == "webp-q85-m4-v3-st"
    assert render_settings_signature(RenderSettings(sizes=tuple(reversed(SIZE_BOXES)))) == "webp-q85-m4-v3"


def test_sizes_come_back_in_table_order() -> None:
    result = rendered("tvdb/poster_a.jpg", RenderSettings(sizes=("thumbnail", "medium")))
    assert [(r.size, r.width, r.height) for r in result.renditions] == [
        ("medium", 490, 720),
        ("thumbnail", 115, 169),
    ]


@pytest.mark.parametrize("relative", ["tvdb/fanart_4k.jpg", "edge/Landscape_6.jpg"])
def test_without_original_a_jpeg_decodes_at_reduced_scale_and_looks_the_same(relative: str) -> None:
    chosen = RenderSettings(sizes=("small", "thumbnail"))
    full = {r.size: r for r in rendered(relative).renditions}
    for rendition in rendered(relative, chosen).renditions:
        reference = full[rendition.size]
        assert (rendition.width, rendition.height) == (reference.width, reference.height)
        assert mean_abs_diff(decoded(rendition.data), decoded(reference.data)) < 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"format": "jpeg"},
        {"quality": 101},
        {"quality": -1},
        {"webp_method": 7},
        {"avif_speed": 11},
        {"sizes": ()},
        {"sizes": ("huge",)},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RenderSettings(**kwargs)  # type: ignore[arg-type]


def test_render_refuses_input_like_validation() -> None:
    with pytest.raises(ImageRejected) as caught:
        render_renditions(b"<html>502</html>", WEBP, LIMITS)
    assert caught.value.cause == "unsupported_format"


def test_arguments_and_results_cross_process_boundaries() -> None:
    data = image_path("tvdb/banner_a.jpg").read_bytes()
    for value in (WEBP, LIMITS, rendered("tvdb/banner_a.jpg")):
        assert pickle.loads(pickle.dumps(value)) == value
    with ProcessPoolExecutor(max_workers=1) as pool:
        result = pool.submit(render_renditions, data, WEBP, LIMITS).result(timeout=60)
        assert result == rendered("tvdb/banner_a.jpg")
        rejected = pool.submit(render_renditions, b"", WEBP, LIMITS).exception(timeout=60)
    assert isinstance(rejected, ImageRejected) and rejected.cause == "empty"
