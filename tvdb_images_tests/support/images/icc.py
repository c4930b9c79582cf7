"""A small CMYK printer ICC profile (v2, CMYK -> Lab lookup table), written byte by byte.

Pillow/LittleCMS can only create RGB and Lab profiles, and a real press profile cannot be shipped
here, so the CMYK test image carries this one. Its inks are impure (cyan also absorbs some green,
magenta some blue) and its paper is off-white, so converting through the profile gives visibly
different colours from Pillow's naive `convert("RGB")`: a pipeline that ignores the profile is caught.
"""

from __future__ import annotations

import itertools
import struct

GRID = 9  # lookup-table points per ink
_D50 = (0.9642, 1.0, 0.8249)
# sRGB primaries adapted to D50, as in the ICC's sRGB profile.
_SRGB_TO_XYZ_D50 = (
    (0.4360747, 0.3850649, 0.1430804),
    (0.2225045, 0.7168786, 0.0606169),
    (0.0139322, 0.0971045, 0.7141733),
)


def printed_srgb(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """The sRGB colour (0-1) a mix of inks (0-1) prints as on this profile's paper and inks."""
    paper = (0.96, 0.95, 0.90)
    red = paper[0] * (1 - c) * (1 - 0.08 * m) * (1 - 0.03 * y)
    green = paper[1] * (1 - 0.30 * c) * (1 - m) * (1 - 0.06 * y)
    blue = paper[2] * (1 - 0.12 * c) * (1 - 0.35 * m) * (1 - y)
    ink_black = 1 - 0.92 * k
    return red * ink_black, green * ink_black, blue * ink_black


def _lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    linear = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
    xyz = [sum(row[i] * linear[i] for i in range(3)) for row in _SRGB_TO_XYZ_D50]

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = (f(v / w) for v, w in zip(xyz, _D50, strict=True))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def _lut16_a2b() -> bytes:
    """An `mft2` tag: 4 inputs, 3 outputs (v2 16-bit Lab), identity curves around a GRID^4 table."""
    identity_matrix = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x10000)
    head = b"mft2" + bytes(4) + struct.pack(">BBBB", 4, 3, GRID, 0)
    head += struct.pack(">9i", *identity_matrix) + struct.pack(">HH", 2, 2)
    input_curves = struct.pack(">HH", 0, 0xFFFF) * 4
    steps = [i / (GRID - 1) for i in range(GRID)]
    table = bytearray()
    for c, m, y, k in itertools.product(steps, repeat=4):  # first input varies slowest
        lightness, a, b = _lab(printed_srgb(c, m, y, k))
        table += struct.pack(">HHH", _u16(lightness * 652.80), _u16((a + 128) * 256), _u16((b + 128) * 256))
    output_curves = struct.pack(">HH", 0, 0xFFFF) * 3
    return head + input_curves + bytes(table) + output_curves


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def cmyk_profile() -> bytes:
    """The profile's bytes: header, tag table, then desc, wtpt, cprt and A2B0."""
    tags = [
        (b"desc", _text_description("tvdb_images test CMYK press")),
        (b"wtpt", _xyz(*_D50)),
        (b"cprt", b"text" + bytes(4) + b"No copyright, use freely.\0"),
        (b"A2B0", _lut16_a2b()),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = bytearray(struct.pack(">I", len(tags))), bytearray()
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += _pad(data)
    size = offset + len(body)
    header = struct.pack(">I4sI", size, b"lcms", 0x02100000)
    header += b"prtr" + b"CMYK" + b"Lab " + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    header += b"acsp" + b"APPL" + bytes(4) + bytes(4) + bytes(4) + bytes(8) + struct.pack(">I", 0)
    header += struct.pack(">3i", *(round(v * 65536) for v in _D50)) + b"lcms"
    header += bytes(128 - len(header))
    return bytes(header) + bytes(table) + bytes(body)
