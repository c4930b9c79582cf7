"""The watermark, pixel by pixel: exactly its box changes on the listed sizes, nothing elsewhere; its
signature follows the file and the parameters; a bad file is one line naming WATERMARK_IMAGE."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tvdb_images.config import ConfigError, Settings
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions, render_settings_signature
from tvdb_images.imaging.sizes import SIZE_BOXES
from tvdb_images.imaging.watermark import Watermark, apply_watermark, load_watermark, placement
from tvdb_images.pipeline.settings import PipelineSettings, watermark_from_settings

LIMITS = ValidationLimits()
BASE = (40, 80, 120)
RED = (255, 0, 0)


def _png(
    path: Path, size: tuple[int, int] = (100, 50), colour: tuple[int, ...] = (*RED, 255), mode: str = "RGBA"
) -> Path:
    Image.new(mode, size, colour).save(path, "PNG")
    return path


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int] = BASE) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _mark(tmp_path: Path, **params: object) -> Watermark:
    values: dict[str, object] = {"sizes": ("large", "small"), "position": "top-left", "opacity": 0.5}
    values.update(margin=10, scale=0.1)
    values.update(params)
    return load_watermark(_png(tmp_path / "mark.png"), **values)  # type: ignore[arg-type]


def _blend(top: int, bottom: int, alpha: int) -> int:
    return round((top * alpha + bottom * (255 - alpha)) / 255)


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", (10, 10)),
        ("top-right", (1920 - 10 - 192, 10)),
        ("bottom-left", (10, 1080 - 10 - 96)),
        ("bottom-right", (1920 - 10 - 192, 1080 - 10 - 96)),
        ("center", ((1920 - 192) // 2, (1080 - 96) // 2)),
    ],
)
def test_exactly_the_watermark_box_changes_at_the_chosen_opacity(
    tmp_path: Path, position: str, expected: tuple[int, int]
) -> None:
    mark = _mark(tmp_path, position=position)
    base = Image.new("RGB", (1920, 1080), BASE)
    out = apply_watermark(base, mark)
    left, top = expected
    assert placement(base.size, (100, 50), mark) == (left, top, 192, 96)  # 10% of the width, aspect kept
    assert out.mode == "RGB" and base.getpixel((left, top)) == BASE  # the input is left untouched
    assert ImageChops.difference(out, base).getbbox() == (left, top, left + 192, top + 96)
    alpha = round(255 * 0.5)
    blended = tuple(_blend(t, b, alpha) for t, b in zip(RED, BASE, strict=True))
    inside = {out.getpixel((x, y)) for x in range(left, left + 192, 7) for y in range(top, top + 96, 7)}
    assert all(max(abs(a - b) for a, b in zip(pixel, blended, strict=True)) <= 1 for pixel in inside), inside


def test_margin_as_a_fraction_and_a_watermark_larger_than_a_tiny_rendition(tmp_path: Path) -> None:
    mark = _mark(tmp_path, margin=0.05, scale=0.5, position="bottom-right")
    assert placement((1000, 400), (100, 50), mark) == (1000 - 20 - 500, 400 - 20 - 250, 500, 250)
    # 8x8 rendition: margin 0, the mark shrunk to fit and never empty.
    left, top, width, height = placement((8, 8), (100, 50), _mark(tmp_path, scale=1.0))
    assert width >= 1 and height >= 1 and left + width <= 8 and top + height <= 8


def test_transparent_renditions_keep_their_alpha(tmp_path: Path) -> None:
    mark = _mark(tmp_path, opacity=1.0)
    base = Image.new("RGBA", (1920, 1080), (0, 0, 0, 0))
    out = apply_watermark(base, mark)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getbbox() == (10, 10, 202, 106)  # alpha unchanged outside the box
    assert out.getpixel((50, 50)) == (*RED, 255)
    grey = apply_watermark(Image.new("LA", (640, 360), (90, 0)), mark)
    assert grey.mode == "RGBA" and grey.getpixel((300, 300))[3] == 0


def test_renders_watermark_only_the_listed_sizes(tmp_path: Path) -> None:
    data = _jpeg((2000, 1200))
    mark = _mark(tmp_path)
    plain = render_renditions(data, RenderSettings(), LIMITS).renditions
    marked = render_renditions(data, RenderSettings(watermark=mark), LIMITS).renditions
    for with_mark, without in zip(marked, plain, strict=True):
        if with_mark.size not in mark.sizes:
            assert with_mark.data == without.data, with_mark.size  # byte-identical
            continue
        image = Image.open(io.BytesIO(with_mark.data)).convert("RGB")
        clean = Image.open(io.BytesIO(without.data)).convert("RGB")
        left, top, width, height = placement(image.size, (100, 50), mark)
        centre = image.getpixel((left + width // 2, top + height // 2))
        expected = tuple(_blend(t, b, 128) for t, b in zip(RED, BASE, strict=True))
        assert max(abs(a - b) for a, b in zip(centre, expected, strict=True)) <= 12, (with_mark.size, centre)
        # Away from the box (beyond the lossy encoder's 16-pixel blocks and their filter) nothing moved.
        difference = ImageChops.difference(image, clean)
        for away in ((left + width + 32, 0, *image.size), (0, top + height + 32, *image.size)):
            extrema = difference.crop(away).getextrema()
            assert max(high for _, high in extrema) <= 3, (with_mark.size, away, extrema)


def test_equal_sizes_share_an_encoding_only_when_both_or_neither_are_watermarked(tmp_path: Path) -> None:
    data = _jpeg((300, 169))  # every size is 300x169
    mark = _mark(tmp_path, sizes=("thumbnail",))
    plain = {r.size: r for r in render_renditions(data, RenderSettings(), LIMITS).renditions}
    marked = {r.size: r for r in render_renditions(data, RenderSettings(watermark=mark), LIMITS).renditions}
    assert marked["thumbnail"].shared_with is None and marked["thumbnail"].data != plain["thumbnail"].data
    for size in ("original", "large", "medium", "small"):
        assert marked[size].data == plain[size].data


def test_signature_follows_the_file_and_every_parameter(tmp_path: Path) -> None:
    base = render_settings_signature(RenderSettings())
    mark = _mark(tmp_path)
    signed = render_settings_signature(RenderSettings(watermark=mark))
    assert signed.startswith(base + "-w") and len(signed) <= 64
    # Same content, another path, loaded again: same signature.
    copy = tmp_path / "copy"
    copy.mkdir()
    again = load_watermark(
        _png(copy / "other.png"), sizes=("small", "large"), position="top-left", margin=10, scale=0.1
    )
    assert render_settings_signature(RenderSettings(watermark=again)) == signed
    changed = [
        _mark(tmp_path, sizes=("large",)),
        _mark(tmp_path, position="center"),
        _mark(tmp_path, opacity=0.4),
        _mark(tmp_path, margin=11),
        _mark(tmp_path, scale=0.2),
    ]
    _png(tmp_path / "blue.png", colour=(0, 0, 255, 255))
    changed.append(
        load_watermark(
            tmp_path / "blue.png", sizes=("large", "small"), position="top-left", margin=10, scale=0.1
        )
    )
    signatures = {render_settings_signature(RenderSettings(watermark=m)) for m in changed}
    assert len(signatures) == len(changed) and signed not in signatures


def _settings(tmp_path: Path, image: Path, **extra: object) -> Settings:
    values = {
        "WATERMARK_IMAGE": str(image),
        "WATERMARK_SIZES": "large,thumbnail",
        "TVDB_IMAGES_DATA_DIR": str(tmp_path),
    }
    return Settings.model_validate({**values, **extra})


def test_settings_reach_the_pipeline(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, _png(tmp_path / "mark.png"), WATERMARK_POSITION="Center", WATERMARK_OPACITY="0.3"
    )
    pipeline = PipelineSettings.from_settings(settings)
    mark = pipeline.render.watermark
    assert mark is not None and mark.sizes == ("large", "thumbnail") and mark.position == "center"
    assert mark.opacity == 0.3 and "-w" in pipeline.signature
    default = PipelineSettings.from_settings(Settings.model_validate({}))
    assert default.render.watermark is None  # off by default
    mirror = _settings(tmp_path, tmp_path / "absent.png", ENABLE_IMAGE_OPTIMIZATION="false")
    assert watermark_from_settings(mirror) is None  # no renditions, nothing to watermark


def _truncated(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.effect_noise((400, 400), 60).convert("RGBA").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "absent.png", "does not exist"),
        (lambda p: p, "does not exist or is not a file"),  # a directory
        (lambda p: (p / "photo.png").write_bytes(_jpeg((64, 64))) and p / "photo.png", "is not a PNG"),
        (lambda p: _png(p / "opaque.png", colour=RED, mode="RGB"), "no alpha"),
        (lambda p: _truncated(p / "cut.png"), "does not decode"),
        (lambda p: _png(p / "huge.png", size=(5000, 10)), "at most 4096x4096"),
    ],
)
def test_a_bad_watermark_file_is_one_line_naming_the_setting(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, make(tmp_path))
    with pytest.raises(ConfigError) as caught:
        watermark_from_settings(settings)
    message = str(caught.value)
    assert message.startswith("WATERMARK_IMAGE: ") and reason in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"WATERMARK_POSITION": "middle"}, "WATERMARK_POSITION"),
        ({"WATERMARK_OPACITY": "1.5"}, "WATERMARK_OPACITY"),
        ({"WATERMARK_SCALE": "0"}, "WATERMARK_SCALE"),
        ({"WATERMARK_MARGIN": "-1"}, "WATERMARK_MARGIN"),
        ({"WATERMARK_SIZES": "large,huge"}, "WATERMARK_SIZES"),
        ({"WATERMARK_SIZES": ""}, "WATERMARK_SIZES: WATERMARK_IMAGE is set but no size is listed"),
    ],
)
def test_bad_watermark_parameters_are_refused_at_load(
    tmp_path: Path, values: dict[str, str], needle: str
) -> None:
    from tvdb_images.config import load_settings

    environment = {"WATERMARK_IMAGE": str(tmp_path / "mark.png"), "WATERMARK_SIZES": "large", **values}
    with pytest.raises(ConfigError, match=needle) as caught:
        load_settings(**environment)
    assert "Value error" not in str(caught.value) and "SETTINGS" not in str(caught.value)
    with pytest.raises(ConfigError, match="WATERMARK_IMAGE: not set"):
        load_settings(WATERMARK_SIZES="large")


def test_every_size_can_be_listed(tmp_path: Path) -> None:
    mark = _mark(tmp_path, sizes=tuple(SIZE_BOXES))
    data = _jpeg((640, 360))
    renditions = render_renditions(data, RenderSettings(watermark=mark), LIMITS).renditions
    plain = render_renditions(data, RenderSettings(), LIMITS).renditions
    assert all(a.data != b.data for a, b in zip(renditions, plain, strict=True))
