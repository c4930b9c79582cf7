"""Cheap structural reads of image containers, done before Pillow sees the bytes.

Walking chunk and segment headers costs microseconds and needs no pixel memory, so it is where the
header dimensions (the decompression-bomb guard) and cut-off downloads are caught. Nothing here
decodes pixels or verifies checksums.

The split between the two failure causes is deliberate and stable:
  * the data ends before the image header is complete (dimensions unknown) -> "corrupt";
  * the header is complete but the data ends before the image does          -> "truncated".
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CORRUPT, METADATA_TOO_LARGE, ImageRejected


@dataclass(frozen=True)
class Container:
    """What the container states about itself."""

    width: int | None  # None: not stated cheaply (AVIF); Pillow's header read supplies it
    height: int | None
    frames: int | None  # None: not counted here; Pillow supplies it
    truncated: str | None = None  # why the data looks cut short, or None


def read_container(fmt: str, data: bytes) -> Container:
    """Walk the container of an already-sniffed format; raise ImageRejected("corrupt") if unreadable."""
    return _READERS[fmt](data)


def _corrupt(detail: str) -> ImageRejected:
    return ImageRejected(CORRUPT, detail)


# --- JPEG -------------------------------------------------------------------------------------------

# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS, _EOI = 0xDA, 0xD9


def _jpeg_marker_name(marker: int) -> str:
    if 0xE0 <= marker <= 0xEF:
        return f"APP{marker - 0xE0}"
    names = {0xDB: "DQT", 0xC4: "DHT", 0xDA: "SOS", 0xDD: "DRI", 0xFE: "COM"}
    if marker in _SOF_MARKERS:
        return f"SOF{marker - 0xC0}"
    return names.get(marker, f"marker 0x{marker:02X}")


def _read_jpeg(data: bytes) -> Container:
    n = len(data)
    pos = 2
    size: tuple[int, int] | None = None
    scan_start: int | None = None
    cut: str | None = None
    while scan_start is None:
        if pos >= n:
            cut = f"the data ends after {n} bytes, inside the header"
            break
        if data[pos] != 0xFF:
            # Decoders skip stray bytes between segments (with a warning); so does this walk.
            pos = data.find(b"\xff", pos)
            if pos < 0:
                cut = f"the data ends after {n} bytes, inside the header"
                break
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            cut = f"the data ends after {n} bytes, inside the header"
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == _EOI:
            raise _corrupt("JPEG ends (EOI) before any image scan")
        if pos + 2 > n:
            cut = f"the data ends inside the {_jpeg_marker_name(marker)} segment"
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise _corrupt(f"JPEG {_jpeg_marker_name(marker)} segment has invalid length {length}")
        end = pos + length
        if marker in _SOF_MARKERS and pos + 7 <= n:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            if width == 0 or height == 0:
                raise _corrupt(f"JPEG frame header states {width}x{height}")
            size = (width, height)
        if end > n:
            cut = (
                f"the {_jpeg_marker_name(marker)} segment at offset {pos - 2} declares {length} bytes"
                f" but only {n - pos} remain"
            )
            break
        if marker == _SOS:
            scan_start = end
        pos = end
    if size is None:
        if cut is not None:
            raise _corrupt(f"JPEG header is unreadable: {cut}, before any frame header (SOF)")
        raise _corrupt("JPEG has an image scan but no frame header (SOF)")
    if cut is None and scan_start is not None and data.rfind(b"\xff\xd9", scan_start) < 0:
        # Entropy-coded data never contains FF D9 (0xFF bytes are stuffed), so a missing EOI
        # after the first scan means the download stopped early.
        cut = f"no end-of-image marker (FFD9) after the image data ({n} bytes)"
    return Container(size[0], size[1], None, cut)


# --- PNG --------------------------------------------------------------------------------------------


def _read_png(data: bytes) -> Container:
    n = len(data)
    if n < 33:
        raise _corrupt(f"PNG header is unreadable: the data ends after {n} bytes, before IHDR is complete")
    if data[12:16] != b"IHDR":
        raise _corrupt("PNG does not start with an IHDR chunk")
    (ihdr_length,) = struct.unpack_from(">I", data, 8)
    width, height = struct.unpack_from(">II", data, 16)
    if ihdr_length != 13 or width == 0 or height == 0:
        raise _corrupt(f"PNG IHDR is invalid (length {ihdr_length}, {width}x{height})")
    frames = 1
    seen_idat = False
    text_bytes = 0
    pos = 8
    while pos + 8 <= n:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise _corrupt(f"PNG chunk header at offset {pos} is invalid")
        end = pos + 12 + length
        if end > n:
            return Container(
                width,
                height,
                frames,
                f"PNG chunk {ctype.decode('ascii')} at offset {pos} declares {length} bytes,"
                f" only {max(0, n - pos - 12)} present",
            )
        if ctype == b"IEND":
            if not seen_idat:
                raise _corrupt("PNG has no image data (IDAT)")
            return Container(width, height, frames, None)
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"acTL" and length >= 8:
            (frames,) = struct.unpack_from(">I", data, pos + 8)
        elif ctype in _PNG_TEXT_CHUNKS:
            text_bytes += _png_text_size(ctype, data[pos + 8 : pos + 8 + length], pos)
            if text_bytes > PNG_MAX_TEXT_TOTAL:
                raise ImageRejected(
                    METADATA_TOO_LARGE,
                    f"PNG text chunks hold {text_bytes:,} bytes, over the limit of {PNG_MAX_TEXT_TOTAL:,}",
                )
        pos = end
    return Container(width, height, frames, f"PNG ends after {n} bytes without an IEND chunk")


# Pillow's own bounds (PngImagePlugin.MAX_TEXT_CHUNK / MAX_TEXT_MEMORY): it refuses a PNG beyond them,
# so the walk refuses it first, with the cause that says what is wrong.
PNG_MAX_TEXT_CHUNK = 1024 * 1024
PNG_MAX_TEXT_TOTAL = 64 * PNG_MAX_TEXT_CHUNK
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})


def _png_text_size(ctype: bytes, body: bytes, offset: int) -> int:
    """Bytes a text chunk holds once inflated; refuses one that inflates beyond PNG_MAX_TEXT_CHUNK."""
    keyword_end = body.find(b"\0")
    if keyword_end < 0:
        return len(body)
    if ctype == b"zTXt":
        compressed, start = True, keyword_end + 2
    elif ctype == b"iTXt":
        compressed = body[keyword_end + 1 : keyword_end + 2] == b"\x01"
        start = body.find(b"\0", body.find(b"\0", keyword_end + 3) + 1) + 1
    else:
        return len(body)
    if not compressed or start <= 0:
        return len(body)
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(body[start:], PNG_MAX_TEXT_CHUNK + 1)
    except zlib.error:
        return len(body)  # undecodable text is skipped by decoders, not a reason to refuse
    if len(inflated) > PNG_MAX_TEXT_CHUNK:
        raise ImageRejected(
            METADATA_TOO_LARGE,
            f"PNG {ctype.decode('ascii')} chunk at offset {offset} inflates to more than"
            f" {PNG_MAX_TEXT_CHUNK:,} bytes",
        )
    return len(inflated)


# --- GIF --------------------------------------------------------------------------------------------


def _read_gif(data: bytes) -> Container:
    if len(data) < 13:
        raise _corrupt(f"GIF header is unreadable: the data ends after {len(data)} bytes")
    width, height = struct.unpack_from("<HH", data, 6)
    # A frame may extend beyond the logical screen (Pillow then grows the canvas to hold it), so
    # the pixels that count are those of the screen and every frame's extent together.
    extent_w, extent_h = _gif_frame_extent(data)
    width, height = max(width, extent_w), max(height, extent_h)
    return Container(width or None, height or None, None, None)


def _gif_frame_extent(data: bytes) -> tuple[int, int]:
    """The right and bottom edges of the GIF's frames, from their image descriptors (no decoding).

    The walk stops quietly where the data stops or stops making sense; Pillow judges the rest.
    """
    n = len(data)
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 0x07) + 1)
    right = bottom = 0
    while pos < n:
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: label, then data sub-blocks
            pos = _skip_gif_sub_blocks(data, pos + 2)
        elif introducer == 0x2C:  # image descriptor
            if pos + 10 > n:
                break
            left, top, frame_w, frame_h, flags = struct.unpack_from("<HHHHB", data, pos + 1)
            right, bottom = max(right, left + frame_w), max(bottom, top + frame_h)
            pos += 10
            if flags & 0x80:
                pos += 3 << ((flags & 0x07) + 1)
            pos = _skip_gif_sub_blocks(data, pos + 1)  # after the LZW minimum code size
        else:
            break
    return right, bottom


def _skip_gif_sub_blocks(data: bytes, pos: int) -> int:
    n = len(data)
    while pos < n:
        length = data[pos]
        pos += 1 + length
        if length == 0:
            break
    return pos


# --- WebP -------------------------------------------------------------------------------------------


def _read_webp(data: bytes) -> Container:
    n = len(data)
    (riff_size,) = struct.unpack_from("<I", data, 4)
    riff_end = 8 + riff_size
    if riff_size < 4 + 8:
        raise _corrupt(f"WebP RIFF header declares {riff_size} bytes")
    cut = None
    if riff_end > n:
        cut = f"WebP RIFF header declares {riff_end} bytes, only {n} present"
    limit = min(riff_end, n)
    width = height = None
    frames = 0
    pos = 12
    first = True
    while pos + 8 <= limit:
        fourcc, length = struct.unpack_from("<4sI", data, pos)
        payload = pos + 8
        if first:
            width, height = _webp_canvas(fourcc, data, payload, length)
            first = False
        elif fourcc == b"ANMF":
            frames += 1
        pos = payload + length + (length & 1)
    if width is None or height is None:
        raise _corrupt("WebP header is unreadable: no VP8, VP8L or VP8X chunk")
    if pos > limit + 1 and cut is None:  # one byte of slack: some writers drop the final pad
        raise _corrupt(f"WebP chunk runs past the RIFF size ({riff_end} bytes)")
    return Container(width, height, max(frames, 1), cut)


def _webp_canvas(fourcc: bytes, data: bytes, payload: int, length: int) -> tuple[int, int]:
    header_bytes = {b"VP8X": 10, b"VP8 ": 10, b"VP8L": 5}.get(fourcc)
    if header_bytes is None:
        raise _corrupt(f"WebP starts with an unknown chunk {fourcc!r}")
    if length < header_bytes or payload + header_bytes > len(data):
        raise _corrupt(f"WebP {fourcc.decode('ascii').strip()} header is incomplete")
    if fourcc == b"VP8X":
        w = int.from_bytes(data[payload + 4 : payload + 7], "little") + 1
        h = int.from_bytes(data[payload + 7 : payload + 10], "little") + 1
        return w, h
    if fourcc == b"VP8 ":
        if data[payload + 3 : payload + 6] != b"\x9d\x01\x2a":
            raise _corrupt("WebP VP8 frame header has no start code")
        w, h = struct.unpack_from("<HH", data, payload + 6)
        return w & 0x3FFF, h & 0x3FFF
    if data[payload] != 0x2F:
        raise _corrupt("WebP VP8L header has no signature")
    (bits,) = struct.unpack_from("<I", data, payload + 1)
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


# --- AVIF (ISO-BMFF) ---------------------------------------------------------------------------------


def _read_avif(data: bytes) -> Container:
    n = len(data)
    pos = 0
    while pos < n:
        if pos + 8 > n:
            return Container(None, None, None, f"AVIF ends inside a box header at offset {pos}")
        size, btype = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > n:
                return Container(None, None, None, f"AVIF ends inside a box header at offset {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = n - pos
        if size < header:
            raise _corrupt(f"AVIF box at offset {pos} has invalid size {size}")
        if pos + size > n:
            name = btype.decode("latin-1")
            detail = f"AVIF box {name!r} at offset {pos} declares {size} bytes, only {n - pos} present"
            if btype in (b"ftyp", b"meta"):
                raise _corrupt(f"AVIF header is unreadable: {detail}")
            return Container(None, None, None, detail)
        pos += size
    return Container(None, None, None, None)


_READERS: dict[str, Callable[[bytes], Container]] = {
    "jpeg": _read_jpeg,
    "png": _read_png,
    "gif": _read_gif,
    "webp": _read_webp,
    "avif": _read_avif,
}
