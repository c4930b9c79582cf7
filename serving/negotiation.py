"""Which stored format to send for a request's `Accept` header (RFC 9110 §12.5.1).

AVIF is sent only to clients that name `image/avif` in `Accept` (as browsers that decode it do):
wildcards such as `*/*` or `image/*` do not count for it, because clients that predate AVIF send them
too. Among the acceptable formats the client's quality values decide, and between equal ones the
smaller stored encoding of the requested size wins (the catalog records every rendition's bytes):
at the per-format qualities the settings choose the formats look alike, so fewer bytes is the better
answer, whichever format that is for this image. Without byte counts the order is the registry's
(`tvdb_images.registry.FORMATS`): AVIF, then WebP, then mirrored sources. When nothing stored is
acceptable the API still sends WebP (or the one stored format) rather than a 406: an image is more
useful to a client with a narrow `Accept` than an error, and RFC 9110 allows disregarding the header.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from tvdb_images.registry import DEFAULT_OUTPUT_FORMAT, FORMATS

MIME_BY_FORMAT: dict[str, str] = {f.name: f.mime for f in FORMATS}
SERVER_PREFERENCE: tuple[str, ...] = tuple(f.name for f in FORMATS)  # the registry's order
DEFAULT_FORMAT = DEFAULT_OUTPUT_FORMAT
# Formats a client must name exactly; a wildcard is no promise that it can decode them.
EXPLICIT_ONLY = frozenset(f.name for f in FORMATS if f.explicit_only)


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    quality: float

    @property
    def specificity(self) -> int:
        return (self.type != "*") + (self.subtype != "*")

    def matches(self, mime: str) -> bool:
        kind, _, sub = mime.partition("/")
        return self.type in ("*", kind) and self.subtype in ("*", sub)


# Bounds on what one Accept header may cost (a browser sends ~100 bytes and under 10 ranges): past
# them the rest is ignored, so parsing takes the same short time however long the header is.
MAX_ACCEPT_LENGTH = 1024
MAX_ACCEPT_RANGES = 32


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges of an Accept header; malformed members are skipped."""
    ranges: list[MediaRange] = []
    members = (header or "")[:MAX_ACCEPT_LENGTH].split(",", MAX_ACCEPT_RANGES)[:MAX_ACCEPT_RANGES]
    for member in members:
        mime, *params = (part.strip() for part in member.split(";"))
        kind, slash, sub = mime.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = -1.0
        if quality >= 0:
            ranges.append(MediaRange(kind, sub, quality))
    return ranges


def quality_of(mime: str, ranges: list[MediaRange], *, exact_only: bool = False) -> float:
    """The q of the most specific range matching `mime`; every type is acceptable with no header."""
    if not ranges:
        return 0.0 if exact_only else 1.0
    matching = [r for r in ranges if r.matches(mime) and (r.specificity == 2 or not exact_only)]
    if not matching:
        return 0.0
    best = max(r.specificity for r in matching)
    return max(r.quality for r in matching if r.specificity == best)


def choose_format(
    available: Iterable[str], accept: str | None, sizes: Mapping[str, int] | None = None
) -> str:
    """The stored format to send; `available` must not be empty. `sizes` (bytes of each format's
    rendition of the requested size) breaks ties between equally acceptable formats: smaller wins."""
    formats = tuple(sorted(set(available), key=_server_rank))
    if not formats:
        raise ValueError("no formats to choose from")
    if accept is not None and len(accept) > _REMEMBERED_ACCEPT_LENGTH:
        best = _best(formats, accept)
    else:
        best = _remembered_best(formats, accept)
    if sizes is None or len(best) == 1:
        return best[0]
    return min(best, key=lambda f: sizes.get(f, sys.maxsize))  # stable: server order among equals


def _best(formats: tuple[str, ...], accept: str | None) -> tuple[str, ...]:
    """The formats the client accepts with its highest quality value, in server order."""
    ranges = parse_accept(accept)
    scored = [
        (quality_of(MIME_BY_FORMAT.get(f, f"image/{f}"), ranges, exact_only=f in EXPLICIT_ONLY), f)
        for f in formats
    ]
    acceptable = [(q, f) for q, f in scored if q > 0]
    if not acceptable:
        fallback = [f for f in formats if f not in EXPLICIT_ONLY]
        return (DEFAULT_FORMAT if DEFAULT_FORMAT in formats else (fallback or formats)[0],)
    top = max(q for q, _ in acceptable)
    return tuple(f for q, f in acceptable if q == top)


# Clients send few distinct Accept headers (one per browser version), so each answer is computed once;
# only headers of ordinary length are remembered, so odd ones cannot fill memory.
_REMEMBERED_ACCEPT_LENGTH = 256
_remembered_best = lru_cache(maxsize=1024)(_best)


def _server_rank(image_format: str) -> int:
    try:
        return SERVER_PREFERENCE.index(image_format)
    except ValueError:
        return len(SERVER_PREFERENCE)
