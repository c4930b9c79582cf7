"""Valid images a careless pipeline gets wrong: colour spaces, orientation, alpha, palettes, animation,
formats and shapes. Each is built from a bundled photograph where pixels matter."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, ImageCms, ImageDraw

from tvdb_images_tests.support.images.icc import cmyk_profile
from tvdb_images_tests.support.images.photos import encoded, shaped

# EXIF orientation -> how the upright picture is stored (the inverse of what undoes it).
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
ORIENTED = {f"exif-orientation-{n}.jpg": n for n in STORED_AS}
# Files whose alpha channel has real transparency (all others are opaque, or have no alpha).
ALPHA_FILES = (
    "16-bit-grey-alpha.png",
    "grey-8bit-alpha.png",
    "Flag_of_the_Netherlands-alpha.png",
    "full-transparent.png",
    "clearlogo-transparent.png",
)
ANIMATED_FILES = ("animated-loop-3.webp", "animated-loop.gif")


def srgb_icc() -> bytes:
    """LittleCMS's sRGB profile with a fixed creation date and no profile ID (both are optional to
    check, and the date would otherwise change the bytes on every run)."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    struct.pack_into(">6H", profile, 24, 2026, 1, 1, 0, 0, 0)
    profile[84:100] = bytes(16)
    return bytes(profile)


def oriented_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG stored turned/mirrored, with the EXIF tag (and camera details) that set it upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera maker"
    exif[0x0110] = "Camera model"
    exif[0x0131] = "tvdb_images test images"
    exif[0x010E] = "A photograph whose camera was held turned; " * 4
    stored = upright.transpose(STORED_AS[orientation]) if orientation in STORED_AS else upright
    return encoded(stored, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=srgb_icc())


def cmyk_jpeg() -> bytes:
    """CMYK JPEG (500x333) carrying the test press profile."""
    return encoded(shaped("coffee", 500, 333).convert("CMYK"), "JPEG", quality=92, icc_profile=cmyk_profile())


def _alpha_disc(width: int, height: int) -> np.ndarray:
    """Opaque in the middle, fading out, fully transparent in the corners."""
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot((x - width / 2) / (width / 2), (y - height / 2) / (height / 2))
    return np.clip((1.15 - distance) * 2.5, 0, 1)


def grey_alpha_16bit(width: int = 109, height: int = 96) -> bytes:
    """A 16-bit greyscale + alpha PNG (colour type 4, depth 16), which Pillow cannot write itself."""
    grey = np.asarray(shaped("camera", width, height), dtype=np.uint16) * 257
    alpha = (_alpha_disc(width, height) * 65535).astype(np.uint16)
    pixels = np.stack([grey, alpha], axis=-1).astype(">u2")
    rows = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def grey_alpha_8bit() -> bytes:
    grey = shaped("camera", 400, 300)
    alpha = Image.fromarray((_alpha_disc(400, 300) * 255).astype(np.uint8))
    return encoded(Image.merge("LA", (grey, alpha)), "PNG")


def palette_flag() -> bytes:
    """A 900x600 palette PNG of three stripes, every palette entry half transparent (tRNS)."""
    flag = Image.new("P", (900, 600))
    flag.putpalette([174, 28, 40, 255, 255, 255, 33, 70, 139])
    draw = ImageDraw.Draw(flag)
    for stripe in range(3):
        draw.rectangle((0, stripe * 200, 899, stripe * 200 + 199), fill=stripe)
    return encoded(flag, "PNG", transparency=b"\x80\x80\x80")


def fully_transparent() -> bytes:
    image = Image.new("P", (300, 300), 0)
    image.putpalette([255, 0, 0])
    return encoded(image, "PNG", transparency=0)


def transparent_logo() -> bytes:
    """The clear logo with its white background keyed out: RGBA with real transparency."""
    logo = shaped("logo", 465, 310).convert("RGB")
    whiteness = np.asarray(logo.convert("L"), dtype=np.float32)
    alpha = np.clip((250 - whiteness) * 8, 0, 255).astype(np.uint8)
    return encoded(Image.merge("RGBA", (*logo.split(), Image.fromarray(alpha))), "PNG")


def _panning_frames(sample: str, width: int, height: int, count: int) -> list[Image.Image]:
    """Frames of a camera panning across a photograph, so each frame differs from the first."""
    step = max(1, width // count)
    wide = shaped(sample, width + step * count, height)
    return [wide.crop((i * step, 0, i * step + width, height)) for i in range(count)]


def animated(fmt: str, sample: str, size: tuple[int, int], frames: int, **options: object) -> bytes:
    images = _panning_frames(sample, *size, frames)
    return encoded(images[0], fmt, save_all=True, append_images=images[1:], duration=80, loop=0, **options)


def edge_files() -> dict[str, bytes]:
    """Every edge/ file, named like the shared corpus's where it has one."""
    landscape = shaped("chelsea", 600, 450)
    files = {
        "Channel_digital_image_CMYK_color.jpg": cmyk_jpeg(),
        "Landscape_6.jpg": oriented_jpeg(landscape, 6),
        "Portrait_8.jpg": oriented_jpeg(shaped("astronaut", 450, 600), 8),
        "concert.jpg": encoded(shaped("camera", 400, 267), "JPEG", quality=90),
        "16-bit-grey-alpha.png": grey_alpha_16bit(),
        "grey-8bit-alpha.png": grey_alpha_8bit(),
        "Flag_of_the_Netherlands-alpha.png": palette_flag(),
        "full-transparent.png": fully_transparent(),
        "clearlogo-transparent.png": transparent_logo(),
        "Crash_test.gif": encoded(shaped("rocket", 800, 533).quantize(256), "GIF"),
        "animated-loop-3.webp": animated("WEBP", "chelsea", (370, 285), 10, quality=90),
        "animated-loop.gif": animated("GIF", "coffee", (320, 213), 8),
        "4.webp": encoded(shaped("coffee", 1024, 772), "WEBP", quality=90),
        "pitm.avif": encoded(shaped("rocket", 4096, 800), "AVIF", quality=60, speed=10),
        "2x2_fdcce6.png": encoded(Image.new("RGB", (2, 2), (0xFD, 0xCC, 0xE6)), "PNG"),
        "big-height.webp": animated("WEBP", "astronaut", (13, 169), 97, quality=80),
    }
    small = shaped("astronaut", 240, 160)
    files.update({name: oriented_jpeg(small, n) for name, n in ORIENTED.items()})
    return files
