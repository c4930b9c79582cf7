"""The storage key layout (a contract): where every object of every artwork lives.

    {content_type}/{hash[0:2]}/{hash[2:4]}/{content_id}/{image_type}/{size}.{ext}

`hash` is the SHA-256 hex digest of "{content_type}/{content_id}" (for example "series/121361").
It spreads items evenly over 256 x 256 prefixes; the first two hex digits are the Dagster partition's
`shard`, so one partition is exactly one prefix, `{content_type}/{shard}/`.

TVDB often has several artworks of one type per item (a series has many posters), which that layout
cannot tell apart. The first artwork of a type recorded for an item (the best-scored one of its first
import) keeps the seed layout exactly; later ones get their artwork id as one more directory:
`.../{content_id}/{image_type}/{artwork_id}/{size}.{ext}`. Each artwork's prefix is chosen once, stored
in `artwork.storage_path`, and never moves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from tvdb_images.config import CONTENT_TYPES, IMAGE_TYPES
from tvdb_images.registry import CROP_NAME_PATTERN, FORMATS, OUTPUT_FORMATS, SIZE_NAMES, SOURCE_FORMATS

SIZES: tuple[str, ...] = SIZE_NAMES  # the registry's rendition sizes, largest first
HEX_DIGITS = "0123456789abcdef"
SHARDS: tuple[str, ...] = tuple(f"{i:02x}" for i in range(256))

_RENDITION_EXTENSIONS = frozenset(f.extension for f in OUTPUT_FORMATS.values())
MIME_BY_EXTENSION = {f.extension: f.mime for f in FORMATS}

# What a full rendition key looks like; used to refuse anything else before it reaches storage.
RENDITION_KEY_PATTERN = re.compile(
    rf"^(?P<content_type>{'|'.join(CONTENT_TYPES)})/(?P<h0>[0-9a-f]{{2}})/(?P<h1>[0-9a-f]{{2}})/"
    rf"(?P<content_id>[0-9]+)/(?P<image_type>{'|'.join(IMAGE_TYPES)})(?:/(?P<artwork_id>[0-9]+))?/"
    rf"(?P<size>{'|'.join(SIZES)})\.(?P<ext>[a-z]+)$"
)
# The same with any crop name for the size: which crops are configured is the deployment's
# (CROP_RENDITIONS), so callers that know them pass their names to `match_layout_key`.
_ANY_SIZE_KEY_PATTERN = re.compile(
    RENDITION_KEY_PATTERN.pattern.replace(f"(?P<size>{'|'.join(SIZES)})", f"(?P<size>{CROP_NAME_PATTERN})")
)
_CROP_NAME = re.compile(CROP_NAME_PATTERN)


class LayoutError(ValueError):
    """A value that cannot be part of a storage key (unknown type, negative id, ...)."""


def content_hash(content_type: str, content_id: int) -> str:
    """Stable hash of one content item, the root of its storage prefix."""
    _check_content(content_type, content_id)
    return hashlib.sha256(f"{content_type}/{content_id}".encode()).hexdigest()


def shard_of(content_type: str, content_id: int) -> str:
    return content_hash(content_type, content_id)[:2]


def partition_prefix(content_type: str, shard: str) -> str:
    """The one storage prefix a (content_type, shard) partition owns."""
    if content_type not in CONTENT_TYPES:
        raise LayoutError(f"unknown content type {content_type!r}")
    if shard not in SHARDS:
        raise LayoutError(f"shard must be two lowercase hex digits, got {shard!r}")
    return f"{content_type}/{shard}/"


def covering_prefixes(content_type: str, shards: Iterable[str]) -> list[str]:
    """The fewest storage prefixes that hold exactly these partitions' keys: one per first hex digit
    whose 16 shards are all included (a 256-partition run lists 16 prefixes, not 256), else one per
    shard."""
    wanted = set(shards)
    prefixes: list[str] = []
    for digit in HEX_DIGITS:
        group = [digit + second for second in HEX_DIGITS]
        if all(shard in wanted for shard in group):
            partition_prefix(content_type, group[0])  # validates the content type
            prefixes.append(f"{content_type}/{digit}")
        else:
            prefixes.extend(partition_prefix(content_type, shard) for shard in group if shard in wanted)
    unknown = wanted - set(SHARDS)
    if unknown:
        raise LayoutError(f"shard must be two lowercase hex digits, got {sorted(unknown)[0]!r}")
    return prefixes


def item_prefix(content_type: str, content_id: int) -> str:
    digest = content_hash(content_type, content_id)
    return f"{content_type}/{digest[0:2]}/{digest[2:4]}/{content_id}"


def artwork_storage_path(content_type: str, content_id: int, image_type: str, artwork_id: int | None) -> str:
    """Prefix of one artwork's objects; `artwork_id` None gives the seed layout's own path."""
    if image_type not in IMAGE_TYPES:
        raise LayoutError(f"unknown image type {image_type!r}")
    base = f"{item_prefix(content_type, content_id)}/{image_type}"
    if artwork_id is None:
        return base
    if artwork_id < 0:
        raise LayoutError(f"artwork id must not be negative, got {artwork_id}")
    return f"{base}/{artwork_id}"


def rendition_key(storage_path: str, size: str, extension: str) -> str:
    """A rendition's key; `size` is a built-in size or a crop name (CROP_RENDITIONS)."""
    if size not in SIZES and not _CROP_NAME.fullmatch(size):
        raise LayoutError(f"unknown size {size!r}")
    if extension not in _RENDITION_EXTENSIONS:
        raise LayoutError(f"unknown rendition extension {extension!r}")
    return f"{storage_path}/{size}.{extension}"


def original_key(storage_path: str, source_format: str) -> str:
    """Key of the unchanged source bytes in the originals bucket."""
    return f"{storage_path}/original.{source_extension(source_format)}"


def source_extension(source_format: str) -> str:
    try:
        return SOURCE_FORMATS[source_format].extension
    except KeyError:
        raise LayoutError(f"unknown source format {source_format!r}") from None


def is_layout_key(key: str, crops: Iterable[str] = ()) -> bool:
    """True for keys the layout can produce (with these crop names); cleanup and serving never touch
    anything else."""
    return match_layout_key(key, crops) is not None


def match_layout_key(key: str, crops: Iterable[str] = ()) -> re.Match[str] | None:
    """The parts of a layout key whose size is a built-in size or one of `crops`, else None."""
    if not crops:
        return RENDITION_KEY_PATTERN.match(key)
    match = _ANY_SIZE_KEY_PATTERN.match(key)
    if match is None or (match["size"] not in SIZES and match["size"] not in set(crops)):
        return None
    return match


def _check_content(content_type: str, content_id: int) -> None:
    if content_type not in CONTENT_TYPES:
        raise LayoutError(f"unknown content type {content_type!r}")
    if not isinstance(content_id, int) or isinstance(content_id, bool) or content_id < 0:
        raise LayoutError(f"content id must be a non-negative integer, got {content_id!r}")
