"""Inputs that must be refused with a clear, recorded cause: cut-off files, broken headers, pixel bombs
whose headers claim more than they hold, formats outside the allow-list, and things that are no image."""

from __future__ import annotations

import random
import struct
import zlib

from PIL import Image

from tvdb_images_tests.support.images.edge import oriented_jpeg
from tvdb_images_tests.support.images.photos import encoded, shaped

# bad/ file -> the cause the pipeline records for it (the shared corpus has the same names, but BMP).
BAD_CAUSES: dict[str, str] = {
    "truncated.jpg": "truncated",  # complete header (2725x2225), no EOI: cut mid-scan
    "truncated.png": "truncated",  # IHDR fine, the IDAT chunk is cut off
    "corrupt-header.jpg": "corrupt",  # SOI + APP1 whose length runs past the data; no frame header
    "giant-image.jpg": "too_many_pixels",  # header claims 20000x14000
    "65536-uint32-limit.png": "too_many_pixels",  # header claims 65536x65536
    "G31D.TIF": "unsupported_format",  # "MM\0*": big-endian TIFF
    "bitmap.bmp": "unsupported_format",  # "BM": Windows bitmap
    "html-error-page.jpg": "unsupported_format",  # "<!DOCTYPE html>"
    "empty.jpg": "empty",
    "random-bytes.png": "not_an_image",
}
BOMBS = ("giant-image.jpg", "65536-uint32-limit.png")


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose IHDR states width x height (CRC fixed up, IDAT tiny)."""
    data = bytearray(encoded(Image.new("L", (1, 1)), "PNG"))
    ihdr = 8  # the IHDR chunk follows the signature
    struct.pack_into(">II", data, ihdr + 8, width, height)
    struct.pack_into(">I", data, ihdr + 8 + 13, zlib.crc32(bytes(data[ihdr + 4 : ihdr + 8 + 13])))
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A one-pixel GIF whose logical screen and first frame state width x height."""
    data = bytearray(encoded(Image.new("P", (1, 1)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    descriptor = data.index(b",", 13)  # the image descriptor: 0x2C, left, top, width, height
    struct.pack_into("<HH", data, descriptor + 5, width, height)
    return bytes(data)


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF) stating width x height, found by walking the segments."""
    data, pos = bytearray(jpeg), 2
    while data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack_from(">H", data, pos + 2)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            struct.pack_into(">HH", data, pos + 5, height, width)
            return bytes(data)
        pos += 2 + length
    raise ValueError("no frame header found")


def random_bytes(size: int = 4096, seed: int = 11) -> bytes:
    """Seeded noise that starts with no image signature."""
    return b"\x00" + random.Random(seed).randbytes(size - 1)


def bad_files() -> dict[str, bytes]:
    photo = shaped("coffee", 2725, 2225)
    big_jpeg = encoded(photo, "JPEG", quality=85)
    png = encoded(shaped("chelsea", 294, 240), "PNG")
    long_exif = oriented_jpeg(shaped("astronaut", 64, 64), 1)
    files = {
        "truncated.jpg": big_jpeg[:10_000],
        "truncated.png": png[:10_000],
        "corrupt-header.jpg": long_exif[:300],
        "giant-image.jpg": jpeg_claiming(encoded(shaped("rocket", 64, 64), "JPEG"), 20_000, 14_000),
        "65536-uint32-limit.png": png_claiming(65_536, 65_536),
        "G31D.TIF": encoded(shaped("camera", 246, 324).convert("1"), "TIFF", big_endian=True),
        "bitmap.bmp": encoded(shaped("chelsea", 64, 48), "BMP"),
        "html-error-page.jpg": b"<!DOCTYPE html><html><head><title>403 Forbidden</title></head>"
        b"<body><h1>Forbidden</h1></body></html>\n",
        "empty.jpg": b"",
        "random-bytes.png": random_bytes(),
    }
    assert set(files) == set(BAD_CAUSES)
    return files
