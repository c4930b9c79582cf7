"""The one exception the imaging package raises for input it refuses.

A refusal is a property of the downloaded bytes, not a bug: callers record `cause` in the catalog
(so it must stay a short, stable code) and `detail` for humans.
"""

from __future__ import annotations

EMPTY = "empty"
TOO_LARGE = "too_large"
UNSUPPORTED_FORMAT = "unsupported_format"
NOT_AN_IMAGE = "not_an_image"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_MANY_FRAMES = "too_many_frames"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
METADATA_TOO_LARGE = "metadata_too_large"

CAUSES: frozenset[str] = frozenset(
    {
        EMPTY,
        TOO_LARGE,
        UNSUPPORTED_FORMAT,
        NOT_AN_IMAGE,
        TOO_MANY_PIXELS,
        TOO_MANY_FRAMES,
        TRUNCATED,
        CORRUPT,
        METADATA_TOO_LARGE,
    }
)


class ImageRejected(Exception):
    """Raised for input the pipeline refuses; `cause` is a short stable code stored in the catalog.

    Causes:
      empty              no bytes at all
      too_large          more bytes than the limit allows
      unsupported_format a recognisable file, but not one of JPEG, PNG, WebP, GIF, AVIF
      not_an_image       no known signature at all (random or binary junk)
      too_many_pixels    header dimensions exceed the pixel limit (decompression bomb guard)
      too_many_frames    an animation with more frames than the limit
      truncated          the image header is complete but the data stops before the image ends
      corrupt            the header is unreadable or inconsistent, or the data fails to decode
      metadata_too_large a text/metadata chunk (PNG tEXt, zTXt, iTXt) holds more than the decoder
                         accepts (1 MiB inflated per chunk, 64 MiB in all): a text bomb, not an image fault
    """

    cause: str
    detail: str

    def __init__(self, cause: str, detail: str) -> None:
        if cause not in CAUSES:
            raise ValueError(f"unknown rejection cause {cause!r}")
        # Both go to Exception.args so the exception survives pickling across process pools.
        super().__init__(cause, detail)
        self.cause = cause
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.cause}: {self.detail}"
