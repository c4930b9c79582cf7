"""The API's own URLs, built in one place so routes, metadata and task replies agree."""

from __future__ import annotations

from urllib.parse import urlencode

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


def task_path(task_id: str) -> str:
    return f"{API_PREFIX}/admin/tasks/{task_id}"
