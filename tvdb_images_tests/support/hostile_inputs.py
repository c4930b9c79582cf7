"""Bad source files for reliability tests: a corpus's bad/ directory plus variants generated here.

Each input is served under a name and a Content-Type that lie about it where that makes the attack
plausible (an SVG named `.jpg` and sent as `image/jpeg`), because the pipeline must judge by the bytes
alone. `cause` is the refusal the pipeline must record, and `bomb` marks inputs whose header claims
more pixels than the limit: those must be refused before Pillow so much as opens them.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tvdb_images_tests.support.images.bad import BAD_CAUSES, BOMBS, gif_claiming, png_claiming


@dataclass(frozen=True)
class BadInput:
    name: str  # what the table calls it
    data: bytes
    served_as: str  # path on the origin, e.g. "/bad/svg-as.jpg"
    content_type: str | None  # the header the origin sends; None sends none
    cause: str  # the failure cause the pipeline must record
    bomb: bool = False


# Corpus bad/ file -> the Content-Type the origin claims for it (its cause: BAD_CAUSES).
CORPUS_CONTENT_TYPES: dict[str, str] = {
    "truncated.jpg": "image/jpeg",
    "truncated.png": "image/png",
    "corrupt-header.jpg": "image/jpeg",
    "giant-image.jpg": "image/jpeg",
    "65536-uint32-limit.png": "image/png",
    "G31D.TIF": "image/jpeg",
    "bitmap.bmp": "image/png",
    "html-error-page.jpg": "image/jpeg",
    "empty.jpg": "image/jpeg",
    "random-bytes.png": "image/png",
}


def bad_inputs(corpus: Path, *, max_frames: int) -> list[BadInput]:
    """Every bad input: the corpus's own (those of BAD_CAUSES it has), then the generated variants."""
    inputs = [
        BadInput(
            f"corpus bad/{name}",
            (corpus / "bad" / name).read_bytes(),
            f"/bad/{name}",
            CORPUS_CONTENT_TYPES[name],
            cause,
            bomb=name in BOMBS,
        )
        for name, cause in BAD_CAUSES.items()
        if (corpus / "bad" / name).is_file()
    ]
    return inputs + generated_inputs(corpus, max_frames=max_frames)


def generated_inputs(corpus: Path, *, max_frames: int) -> list[BadInput]:
    fanart = (corpus / "tvdb" / "fanart_a.jpg").read_bytes()
    webp = (corpus / "edge" / "4.webp").read_bytes()
    frames = max_frames * 3
    small = Image.new("RGB", (16, 16), (200, 40, 40))
    return [
        BadInput(
            "JPEG, last half missing", fanart[: len(fanart) // 2], "/gen/half.jpg", "image/jpeg", "truncated"
        ),
        BadInput(
            "WebP, last half missing", webp[: len(webp) // 2], "/gen/half.webp", "image/webp", "truncated"
        ),
        BadInput(
            "PNG whose header claims 100000x100000",
            png_claiming(100_000, 100_000),
            "/gen/claims-100000.png",
            "image/png",
            "too_many_pixels",
            bomb=True,
        ),
        BadInput(
            "GIF whose screen claims 65535x65535",
            gif_claiming(65_535, 65_535),
            "/gen/claims-65535.gif",
            "image/gif",
            "too_many_pixels",
            bomb=True,
        ),
        BadInput("SVG named .jpg", svg_document(), "/gen/svg-as.jpg", "image/jpeg", "unsupported_format"),
        BadInput(
            "TIFF named .jpg", _encoded(small, "TIFF"), "/gen/tiff-as.jpg", "image/jpeg", "unsupported_format"
        ),
        BadInput(
            "PDF named .jpg", _encoded(small, "PDF"), "/gen/pdf-as.jpg", "image/jpeg", "unsupported_format"
        ),
        BadInput(
            "EPS named .jpg", _encoded(small, "EPS"), "/gen/eps-as.jpg", "image/jpeg", "unsupported_format"
        ),
        BadInput(
            "BMP named .png", _encoded(small, "BMP"), "/gen/bmp-as.png", "image/png", "unsupported_format"
        ),
        BadInput(
            "ICO named .png", _encoded(small, "ICO"), "/gen/ico-as.png", "image/png", "unsupported_format"
        ),
        BadInput(
            "JPEG 2000 named .jpg",
            _encoded(small, "JPEG2000"),
            "/gen/jp2-as.jpg",
            "image/jpeg",
            "unsupported_format",
        ),
        BadInput(
            "QOI named .png", _encoded(small, "QOI"), "/gen/qoi-as.png", "image/png", "unsupported_format"
        ),
        BadInput(
            "ZIP holding a JPEG, named .jpg",
            zip_of(fanart),
            "/gen/zip-as.jpg",
            "image/jpeg",
            "unsupported_format",
        ),
        BadInput(
            "HTML page sent as image/png",
            b"<!DOCTYPE html><title>502</title>",
            "/gen/page.png",
            "image/png",
            "unsupported_format",
        ),
        BadInput(
            "JSON error sent as image/jpeg",
            b'{"error": "not found"}',
            "/gen/error.jpg",
            "image/jpeg",
            "unsupported_format",
        ),
        BadInput(
            "PCX (no signature) named .jpg",
            _encoded(small, "PCX"),
            "/gen/pcx-as.jpg",
            "image/jpeg",
            "not_an_image",
        ),
        BadInput(
            "GIF whose frame extends to 20000x20000 beyond its 16x16 screen",
            gif_with_frame((16, 16), (20_000, 20_000), before=1),
            "/gen/frame-beyond-screen.gif",
            "image/gif",
            "too_many_pixels",
            bomb=True,
        ),
        BadInput(
            "PNG with a zTXt chunk inflating to 3 MB",
            png_with_text_chunk(b"zTXt", b"A" * 3_000_000),
            "/gen/text-bomb.png",
            "image/png",
            "metadata_too_large",
        ),
        BadInput(
            f"GIF with {frames} frames",
            animation(frames, "GIF"),
            "/gen/frames.gif",
            "image/gif",
            "too_many_frames",
        ),
        BadInput(
            f"APNG with {frames} frames",
            animation(frames, "PNG"),
            "/gen/frames.png",
            "image/png",
            "too_many_frames",
        ),
        BadInput(
            f"WebP with {frames} frames",
            animation(frames, "WEBP"),
            "/gen/frames.webp",
            "image/webp",
            "too_many_frames",
        ),
    ]


def svg_document() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000">'
        b'<image href="http://169.254.169.254/latest/meta-data/" width="1" height="1"/></svg>'
    )


def zip_of(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("poster.jpg", payload)
    return buffer.getvalue()


def animation(frames: int, fmt: str) -> bytes:
    """An animation of `frames` tiny frames (each a different colour, so none is merged away)."""
    images = [Image.new("RGB", (8, 8), (i % 256, (i * 7) % 256, (i * 13) % 256)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def gif_with_frame(
    screen: tuple[int, int], frame: tuple[int, int], *, offset=(0, 0), before: int = 0
) -> bytes:
    """A GIF whose logical screen is `screen` and whose last frame (after `before` others) is `frame`."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    comment = b"\x21\xfe\x03abc\x00"  # an extension block the walk must step over

    def descriptor(x: int, y: int, w: int, h: int) -> bytes:
        return b"\x2c" + struct.pack("<HHHHB", x, y, w, h, 0) + b"\x02\x02\x44\x01\x00"

    frames = b"".join(descriptor(0, 0, *screen) for _ in range(before)) + descriptor(*offset, *frame)
    return head + comment + frames + b"\x3b"


def png_with_text_chunk(chunk_type: bytes, text: bytes, *, after_image_data: bool = False) -> bytes:
    """A valid 8x8 PNG carrying one extra text chunk (compressed for zTXt and iTXt)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    png = buffer.getvalue()
    if chunk_type == b"zTXt":
        body = b"Comment\x00\x00" + zlib.compress(text, 9)
    elif chunk_type == b"iTXt":
        body = b"Comment\x00\x01\x00en\x00Comment\x00" + zlib.compress(text, 9)
    else:
        body = b"Comment\x00" + text
    chunk = (
        struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", zlib.crc32(chunk_type + body))
    )
    at = png.rindex(b"IEND") - 4 if after_image_data else 33
    return png[:at] + chunk + png[at:]
