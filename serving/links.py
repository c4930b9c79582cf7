"""The API's own URLs, built in one place so routes, metadata and task replies agree."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from serving.queries import RenditionRecord
    from tvdb_images.config import Settings
    from tvdb_images.storage import ObjectStore

API_PREFIX = "/api/v1"


def artwork_image_path(artwork_id: int, size: str, *, image_format: str | None, version: str | None) -> str:
    """A URL pinned to one artwork (and, with a format and version, to one exact set of bytes)."""
    query = {key: value for key, value in (("format", image_format), ("v", version)) if value}
    path = f"{API_PREFIX}/images/artwork/{artwork_id}/{size}"
    return f"{path}?{urlencode(query)}" if query else path


def public_url(public_base_url: str | None, path: str) -> str:
    """An API path as clients should use it: under PUBLIC_BASE_URL when set, else root-relative.
    Never built from the request's Host header, which any client (or a cache poisoner) chooses."""
    return f"{public_base_url}{path}" if public_base_url else path


def versioned_url(settings: Settings, store: ObjectStore, rendition: RenditionRecord) -> str:
    """A rendition's URL that changes whenever its bytes do, so it can be cached for good: on the CDN
    with `?v=` (the key is reused when a source is rendered again), else this API's pinned URL."""
    if settings.cdn_base_url:
        return f"{store.url(rendition.bucket, rendition.storage_key)}?{urlencode({'v': rendition.version})}"
    return public_url(settings.public_base_url, rendition.pinned_path)


def task_path(task_id: str) -> str:
    return f"{API_PREFIX}/admin/tasks/{task_id}"
