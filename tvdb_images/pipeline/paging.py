"""Stream a stage's work from the catalog page by page, by artwork id.

Keyset paging keeps memory flat however much work a scope holds, and never returns an artwork twice
in one run: a retryable failure recorded during the run stays eligible, but its id is already behind
the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from tvdb_images.catalog.db import Catalog

PAGE_SIZE = 200


class _HasArtworkId(Protocol):
    @property
    def artwork_id(self) -> int: ...


T = TypeVar("T", bound=_HasArtworkId)


def pages_by_id(
    catalog: Catalog, fetch_page: Callable[[Session, int, int], list[T]], *, limit: int | None = None
) -> Iterator[T]:
    """Yield up to `limit` tasks; `fetch_page(session, after_id, page_size)` returns the next page."""
    after_id = -1
    remaining = limit
    while remaining is None or remaining > 0:
        page_size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
        with catalog.session() as session:
            page = fetch_page(session, after_id, page_size)
        if not page:
            return
        yield from page
        after_id = page[-1].artwork_id
        if remaining is not None:
            remaining -= len(page)
