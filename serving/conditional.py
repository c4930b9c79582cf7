"""HTTP caching for images: strong ETags, `If-None-Match`, content versions and Cache-Control.

An image URL such as `/api/v1/images/series/1/poster/small` is stable, but what it serves is not:
the primary poster may change, and a changed source is re-rendered under the same storage keys. So a
bare URL is cached for IMAGE_CACHE_MAX_AGE_SECONDS and then revalidated with its ETag (a cheap 304
while nothing changed). A URL carrying `?v=<version>` names one exact set of bytes (the version is a
digest of the checksums of every rendition the URL can serve), so it is `immutable` for a year; the
artwork metadata endpoint hands out such URLs. A `v` that no longer matches is served like a bare
URL, never cached for long.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

VERSION_LENGTH = 16
VERSION_PATTERN = r"^[0-9a-f]{1,64}$"
_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')
# A versioned URL names one exact set of bytes, so it never needs revalidating. (The objects in storage
# get only a week: their keys are reused when a source changes.)
IMMUTABLE = "public, max-age=31536000, immutable"


def strong_etag(checksum: str) -> str:
    return f'"{checksum}"'


def content_version(checksums: Iterable[str]) -> str:
    """Version of the bytes a URL can serve: changes whenever any of them changes."""
    joined = "\n".join(sorted(checksums))
    return hashlib.sha256(joined.encode()).hexdigest()[:VERSION_LENGTH]


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*` or any listed entity tag equal to `etag` by weak comparison."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    position = 0
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None:
            return False  # malformed list: the condition is not met, send the full response
        if match.group(1) == etag:
            return True
        position = match.end()
    return False


def cache_control(*, versioned: bool, max_age: int) -> str:
    if versioned:
        return IMMUTABLE
    return f"public, max-age={max_age}"


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7), as `Last-Modified` carries it."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110 §13.2.2: `If-None-Match` decides when present; else `If-Modified-Since`, compared at
    the one-second precision of HTTP dates (an unparsable date is ignored)."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return if_none_match_hits(if_none_match, etag)
    since = headers.get("if-modified-since")
    if not since or last_modified is None or len(since) > 64:
        return False
    try:
        parsed = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return last_modified.astimezone(UTC).replace(microsecond=0) <= parsed
