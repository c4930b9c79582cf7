"""Validation: every refusal gets its truthful cause, and bombs are stopped before any decoding."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from tvdb_images.imaging import (
    CAUSES,
    ImageRejected,
    RenderSettings,
    SourceInfo,
    ValidationLimits,
    render_renditions,
    sniff_format,
    validate_source,
)
from tvdb_images_tests.support.hostile_inputs import gif_with_frame, png_with_text_chunk
from tvdb_images_tests.support.images import BAD_CAUSES, corpus_roots, image_cases, image_path
from tvdb_images_tests.support.images.bad import BOMBS, png_claiming

LIMITS = ValidationLimits()

# Every bad/ file (generated, then the shared corpus's), with the cause it must be refused with.
BAD_FILES = image_cases(*(f"bad/{name}" for name in BAD_CAUSES))
BOMB_FILES = image_cases(*(f"bad/{name}" for name in BOMBS))


def cause_of(case: str) -> str:
    return BAD_CAUSES[Path(case).name]


def case_bytes(case: str) -> bytes:
    return image_path(case).read_bytes()


def reject(data: bytes, limits: ValidationLimits = LIMITS) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        validate_source(data, limits)
    assert caught.value.cause in CAUSES
    assert caught.value.detail
    return caught.value


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def animation(frames: int, fmt: str) -> bytes:
    images = [Image.new("RGB", (4, 4), (i % 256, (i * 7) % 256, 0)) for i in range(frames)]
    return encoded(images[0], fmt, save_all=True, append_images=images[1:], duration=40)


# --- the corpus ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_with_their_cause(case: str) -> None:
    assert reject(case_bytes(case)).cause == cause_of(case)


@pytest.mark.parametrize("case", BAD_FILES)
def test_render_refuses_bad_files_the_same_way(case: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        render_renditions(case_bytes(case), RenderSettings(), LIMITS)
    assert caught.value.cause == cause_of(case)


@pytest.mark.parametrize("root", corpus_roots())
def test_rejection_details_name_what_was_found(root: str) -> None:
    assert "TIFF" in reject(case_bytes(f"{root}bad/G31D.TIF")).detail
    assert "HTML" in reject(case_bytes(f"{root}bad/html-error-page.jpg")).detail
    assert "20000x14000" in reject(case_bytes(f"{root}bad/giant-image.jpg")).detail


@pytest.mark.parametrize(
    ("relative", "fmt", "size", "frames"),
    [
        ("tvdb/fanart_a.jpg", "jpeg", (1920, 1080), 1),
        ("tvdb/clearlogo_a.png", "png", (465, 310), 1),
        ("edge/Landscape_6.jpg", "jpeg", (450, 600), 1),  # as stored, before orientation
        ("edge/Crash_test.gif", "gif", (800, 533), 1),
        ("edge/animated-loop-3.webp", "webp", (370, 285), 10),
        ("edge/big-height.webp", "webp", (13, 169), 97),
        ("edge/pitm.avif", "avif", (4096, 800), 1),
    ],
)
@pytest.mark.parametrize("root", corpus_roots())
def test_valid_sources_are_described(
    root: str, relative: str, fmt: str, size: tuple[int, int], frames: int
) -> None:
    data = case_bytes(root + relative)
    info = validate_source(data, LIMITS)
    extension = {"jpeg": "jpg"}.get(fmt, fmt)
    assert info == SourceInfo(fmt, f"image/{fmt}", extension, size[0], size[1], frames, len(data))


# --- cheap checks, before any decoding -------------------------------------------------------------


@pytest.mark.parametrize("case", BOMB_FILES)
def test_bombs_are_refused_without_decoding(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = (case_bytes(case), png_claiming(100_000, 100_000))

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for data in inputs:
        assert reject(data).cause == "too_many_pixels"
        with pytest.raises(ImageRejected) as caught:
            render_renditions(data, RenderSettings(), LIMITS)
        assert caught.value.cause == "too_many_pixels"


@pytest.mark.parametrize("root", corpus_roots())
def test_bombs_are_refused_before_pillow_opens_them(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bombs = [case_bytes(f"{root}bad/{name}") for name in BOMBS]

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to open a bomb")

    monkeypatch.setattr(Image, "open", no_open)
    for data in bombs:
        assert reject(data).cause == "too_many_pixels"


def test_pixel_limit_is_the_callers() -> None:
    data = encoded(Image.new("RGB", (100, 100)), "PNG")
    assert validate_source(data, ValidationLimits(max_pixels=10_000)).width == 100
    assert reject(data, ValidationLimits(max_pixels=9_999)).cause == "too_many_pixels"


def test_too_large_is_checked_on_bytes() -> None:
    data = encoded(Image.new("RGB", (64, 64)), "PNG")
    assert reject(data, ValidationLimits(max_bytes=len(data) - 1)).cause == "too_large"
    assert validate_source(data, ValidationLimits(max_bytes=len(data))).byte_size == len(data)


def test_empty() -> None:
    assert reject(b"").cause == "empty"


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animations_over_the_frame_cap(fmt: str) -> None:
    cap = LIMITS.max_frames
    assert reject(animation(cap + 1, fmt)).cause == "too_many_frames"
    assert validate_source(animation(3, fmt), LIMITS).frames == 3


def test_frame_cap_is_the_callers() -> None:
    data = animation(5, "GIF")
    assert reject(data, ValidationLimits(max_frames=4)).cause == "too_many_frames"


# --- formats are judged by their bytes -------------------------------------------------------------

SMALL = Image.new("RGB", (16, 16), (200, 40, 40))


@pytest.mark.parametrize(
    ("label", "data", "found"),
    [
        ("SVG", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        ("XML", b'<?xml version="1.0"?><error><code>404</code></error>', "XML"),
        ("HTML", b"\n  <html><body>Service Unavailable</body></html>", "HTML"),
        ("text", b"Not Found\n", "text"),
        ("PDF", encoded(SMALL, "PDF"), "PDF"),
        ("EPS", encoded(SMALL, "EPS"), "EPS"),
        ("BMP", encoded(SMALL, "BMP"), "BMP"),
        ("TIFF", encoded(SMALL, "TIFF"), "TIFF"),
        ("HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
        ("HEIF", b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1" + bytes(64), "HEIC"),
        ("MP4", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64), "ISO media"),
    ],
)
def test_foreign_formats_are_unsupported(label: str, data: bytes, found: str) -> None:
    rejected = reject(data)
    assert rejected.cause == "unsupported_format", label
    assert found in rejected.detail


def test_random_bytes_are_not_an_image() -> None:
    data = bytes((i * 131 + 7) % 251 for i in range(2048))
    assert reject(data).cause == "not_an_image"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBP", "webp"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "avif"),
        (b"\x00\x00\x00\x18ftypavis\x00\x00\x00\x00avismsf1", "avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", None),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1avif", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"II*\x00", None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_sniff_format(data: bytes, fmt: str | None) -> None:
    assert sniff_format(data) == fmt


def test_a_cut_signature_is_truncated() -> None:
    assert reject(b"\x89PN").cause == "truncated"


# --- truncation and corruption ---------------------------------------------------------------------


@pytest.mark.parametrize("relative", image_cases("tvdb/poster_a.jpg", "tvdb/poster_progressive.jpg"))
def test_jpeg_missing_its_last_half_is_truncated(relative: str) -> None:
    data = case_bytes(relative)
    assert reject(data[: len(data) // 2]).cause == "truncated"


@pytest.mark.parametrize("relative", image_cases("tvdb/person_a.jpg"))
def test_jpeg_with_trailing_bytes_is_accepted(relative: str) -> None:
    data = case_bytes(relative) + b"\x00" * 300
    assert validate_source(data, LIMITS).format == "jpeg"


@pytest.mark.parametrize(
    "relative",
    image_cases(
        "tvdb/clearlogo_a.png",
        "edge/4.webp",
        "edge/pitm.avif",
        "edge/animated-loop-3.webp",
    ),
)
def test_other_formats_cut_short_are_truncated(relative: str) -> None:
    data = case_bytes(relative)
    assert reject(data[: len(data) * 2 // 3]).cause == "truncated"


@pytest.mark.parametrize("relative", image_cases("edge/Crash_test.gif"))
def test_gif_cut_inside_its_frame_is_truncated_at_render(relative: str) -> None:
    """A GIF has no length fields to check up front: the cut shows when the frame is decoded."""
    data = case_bytes(relative)
    with pytest.raises(ImageRejected) as caught:
        render_renditions(data[: len(data) * 2 // 3], RenderSettings(), LIMITS)
    assert caught.value.cause == "truncated"


@pytest.mark.parametrize("relative", image_cases("edge/Landscape_6.jpg"))
def test_jpeg_header_cut_before_the_frame_header_is_corrupt(relative: str) -> None:
    data = case_bytes(relative)  # starts with a long EXIF segment
    assert reject(data[:200]).cause == "corrupt"


def test_png_whose_data_does_not_inflate_is_corrupt_at_render() -> None:
    """Structure intact (so validation passes), pixel data garbage: rendering refuses it."""
    data = bytearray(encoded(Image.new("RGB", (64, 64), (10, 20, 30)), "PNG", compress_level=0))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(range(200, 240))
    validate_source(bytes(data), LIMITS)
    with pytest.raises(ImageRejected) as caught:
        render_renditions(bytes(data), RenderSettings(), LIMITS)
    assert caught.value.cause in ("corrupt", "truncated")


@pytest.mark.parametrize("relative", image_cases("edge/2x2_fdcce6.png"))
def test_png_without_iend_is_truncated(relative: str) -> None:
    data = case_bytes(relative)
    assert data.endswith(b"IEND\xaeB`\x82")
    assert reject(data[:-12]).cause == "truncated"


# --- the exception itself --------------------------------------------------------------------------


def test_image_rejected_survives_pickling() -> None:
    original = ImageRejected("truncated", "cut at 10 bytes")
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.cause, copy.detail, str(copy)) == (
        "truncated",
        "cut at 10 bytes",
        "truncated: cut at 10 bytes",
    )


def test_image_rejected_knows_only_stable_causes() -> None:
    with pytest.raises(ValueError):
        ImageRejected("broken", "not a cause")


# --- frames beyond the logical screen, text bombs ------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "offset", "before"),
    [((20000, 20000), (0, 0), 0), ((20000, 20000), (0, 0), 2), ((100, 100), (9000, 9000), 1)],
    ids=["first-frame-far-beyond", "later-frame-far-beyond", "small-frame-far-away"],
)
def test_gif_frames_beyond_the_screen_meet_the_projects_pixel_cap(
    frame: tuple[int, int], offset: tuple[int, int], before: int
) -> None:
    data = gif_with_frame((16, 16), frame, offset=offset, before=before)
    rejected = reject(data)
    assert rejected.cause == "too_many_pixels"
    assert "MAX_IMAGE_PIXELS" in rejected.detail
    assert "50,000,000" in rejected.detail
    assert "178,956,970" not in rejected.detail  # Pillow's own limit never gets to speak
    with pytest.raises(ImageRejected) as caught:
        render_renditions(data, RenderSettings(), LIMITS)
    assert caught.value.cause == "too_many_pixels"


def test_gif_frames_within_the_cap_are_measured_by_their_extent() -> None:
    data = gif_with_frame((16, 16), (120, 90), before=1)
    assert reject(data, ValidationLimits(max_pixels=120 * 90 - 1)).cause == "too_many_pixels"


@pytest.mark.parametrize("chunk_type", [b"zTXt", b"iTXt"])
@pytest.mark.parametrize("after_image_data", [False, True], ids=["before-idat", "after-idat"])
def test_png_with_a_text_bomb_is_metadata_too_large(chunk_type: bytes, after_image_data: bool) -> None:
    data = png_with_text_chunk(chunk_type, b"A" * 3_000_000, after_image_data=after_image_data)
    assert len(data) < 20_000  # a few kilobytes that inflate to megabytes
    rejected = reject(data)
    assert rejected.cause == "metadata_too_large"
    assert chunk_type.decode() in rejected.detail
    with pytest.raises(ImageRejected) as caught:
        render_renditions(data, RenderSettings(), LIMITS)
    assert caught.value.cause == "metadata_too_large"


@pytest.mark.parametrize("chunk_type", [b"tEXt", b"zTXt", b"iTXt"])
def test_png_with_modest_text_is_valid(chunk_type: bytes) -> None:
    data = png_with_text_chunk(chunk_type, b"poster by someone" * 100)
    assert validate_source(data, LIMITS).format == "png"
    assert render_renditions(data, RenderSettings(), LIMITS).renditions


def test_pillows_text_refusal_maps_to_metadata_too_large() -> None:
    from tvdb_images.imaging.validate import decode_failure

    error = ValueError("Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK")
    assert decode_failure("png", error).cause == "metadata_too_large"
