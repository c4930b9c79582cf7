"""Render signatures with a fixed meaning, read by the pipeline, the catalog statistics and the API
(a module of its own so that reading the catalog does not import the pipeline's imaging and fetching)."""

from collections.abc import Iterable

# Render signature of artwork stored as-is (ENABLE_IMAGE_OPTIMIZATION=false): one unchanged source.
MIRROR_SIGNATURE = "mirror"

# Artwork stored in several formats records their own signatures (one per format, on its renditions)
# joined by this, in IMAGE_FORMATS order: "webp-q85-m4-v2+avif-q70-s8-v2".
FORMAT_SEPARATOR = "+"


def join_signatures(signatures: Iterable[str]) -> str:
    return FORMAT_SEPARATOR.join(signatures)


def split_signature(signature: str | None) -> tuple[str, ...]:
    """The per-format signatures an artwork signature is made of (none for a mirrored source)."""
    if not signature or signature == MIRROR_SIGNATURE:
        return ()
    return tuple(signature.split(FORMAT_SEPARATOR))
