"""Identify a file by its first bytes.

Only the bytes decide: servers send HTML error pages under `.jpg` names and wrong Content-Types,
so neither the file name nor the HTTP headers are consulted anywhere in the pipeline.
"""

from __future__ import annotations

import struct

# ISO-BMFF brands (ftyp box) that make a file AVIF, or a HEIF container that may carry AVIF.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_STRUCTURAL_BRANDS = frozenset({b"mif1", b"msf1"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1"})
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def sniff_format(data: bytes) -> str | None:
    """The accepted image format the magic bytes announce ("jpeg", "png", "webp", "gif", "avif").

    Nothing is parsed beyond the signature, so a match says what the file claims to be, not that
    it is intact; `None` means "not one of the accepted formats".
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    brands = _ftyp_brands(data)
    if brands is not None and _is_avif(*brands):
        return "avif"
    return None


def describe_foreign(data: bytes) -> str | None:
    """Name a recognisable non-accepted format ("TIFF image", "HTML document", ...), else None.

    Used only to write a truthful rejection detail; None means the bytes look like nothing known.
    """
    head = data[:64]
    for signatures, name in _BINARY_SIGNATURES:
        if head.startswith(signatures):
            return name
    if head.startswith(b"BM") and len(data) >= 18:
        (dib_size,) = struct.unpack_from("<I", data, 14)
        if dib_size in _BMP_HEADER_SIZES:
            return "BMP image"
    if head.startswith(b"RIFF") and len(data) >= 12:
        return f"RIFF file ({_printable(data[8:12])})"
    brands = _ftyp_brands(data)
    if brands is not None:
        major, compatible = brands
        if major in _HEIC_BRANDS or compatible & (_HEIC_BRANDS - {b"mif1"}):
            return "HEIF/HEIC image"
        return f"ISO media file (brand {_printable(major)})"
    return _describe_text(data[:2048])


def signature_prefix(data: bytes) -> str | None:
    """The accepted format whose signature `data` is a strict beginning of (a download cut short)."""
    for name, signature in (("jpeg", b"\xff\xd8\xff"), ("png", b"\x89PNG\r\n\x1a\n"), ("gif", b"GIF89a")):
        if len(data) < len(signature) and signature.startswith(data):
            return name
    if len(data) < 6 and b"GIF87a".startswith(data):
        return "gif"
    return None


def _ftyp_brands(data: bytes) -> tuple[bytes, frozenset[bytes]] | None:
    """Major and compatible brands of a leading ISO-BMFF `ftyp` box, or None if there is none."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack_from(">I", data, 0)
    end = min(size, len(data)) if size >= 16 else 16
    compatible = frozenset(data[i : i + 4] for i in range(16, end - 3, 4))
    return data[8:12], compatible


def _is_avif(major: bytes, compatible: frozenset[bytes]) -> bool:
    if major in _AVIF_BRANDS:
        return True
    return major in _HEIF_STRUCTURAL_BRANDS and bool(compatible & _AVIF_BRANDS)


def _printable(raw: bytes) -> str:
    return repr(raw.decode("latin-1"))


def _describe_text(head: bytes) -> str | None:
    """Recognise markup and plain text, the usual body of an error page served as an image."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    stripped = head.lstrip().lower()
    if stripped.startswith(b"<"):
        if b"<svg" in stripped:
            return "SVG document"
        if stripped.startswith(b"<!doctype html") or any(
            tag in stripped for tag in (b"<html", b"<head", b"<body", b"<title")
        ):
            return "HTML document"
        if stripped.startswith(b"<?xml"):
            return "XML document"
    if not head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 2 KiB window is still text.
        if exc.start < len(head) - 3:
            return None
        text = head[: exc.start].decode("utf-8")
    if all(ch.isprintable() or ch in "\t\r\n\f" for ch in text):
        first = text.lstrip()[:1]
        return "JSON document" if first in ("{", "[") else "text document"
    return None


_BINARY_SIGNATURES: tuple[tuple[tuple[bytes, ...], str], ...] = (
    ((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "TIFF image"),
    ((b"%PDF-",), "PDF document"),
    ((b"%!PS",), "PostScript/EPS document"),
    ((b"\xc5\xd0\xd3\xc6",), "EPS document"),
    ((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"), "JPEG 2000 image"),
    ((b"\x00\x00\x00\x0cJXL \r\n\x87\n", b"\xff\x0a"), "JPEG XL image"),
    ((b"8BPS",), "Photoshop document"),
    ((b"\x00\x00\x01\x00", b"\x00\x00\x02\x00"), "ICO/CUR image"),
    ((b"qoif",), "QOI image"),
    ((b"\x76\x2f\x31\x01",), "OpenEXR image"),
    ((b"#?RADIANCE", b"#?RGBE"), "Radiance HDR image"),
    ((b"PK\x03\x04",), "ZIP archive"),
    ((b"\x1f\x8b",), "gzip data"),
)
