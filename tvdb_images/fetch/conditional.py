"""Conditional requests: the validators an origin sent with a source, and what a HEAD tells about it.

A source is revalidated by sending its recorded validators back (`If-None-Match` with the ETag,
`If-Modified-Since` with the Last-Modified value, both verbatim as the origin sent them); a 304 then
costs no download. An origin that sent neither can still be asked with HEAD for the size and type.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# Longest validator kept: a header value beyond this is not a validator worth echoing back.
MAX_VALIDATOR_LENGTH = 512


@dataclass(frozen=True)
class SourceValidators:
    """What the origin said identifies the bytes it sent: an entity tag and/or a modification date."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)

    def request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    @classmethod
    def of(cls, response: httpx.Response) -> SourceValidators:
        return cls(
            etag=_validator(response.headers.get("ETag")),
            last_modified=_validator(response.headers.get("Last-Modified")),
        )


@dataclass(frozen=True)
class HeadInfo:
    """What a HEAD request said about a source: its declared size and media type, if any."""

    url: str
    status: int
    content_length: int | None
    content_type: str | None
    validators: SourceValidators
    attempts: int


def _validator(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_VALIDATOR_LENGTH or not value.isprintable():
        return None
    return value
