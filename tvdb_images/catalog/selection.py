"""Which artwork is an item's primary one of a type: the rule the importer, the content tables' local
URLs and the serving API all share, so they never disagree.

Primary = highest TVDB score; on a tie, English before artwork with no language before other
languages; then the lowest artwork id (the oldest), so the choice is stable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case

from tvdb_images.catalog.models import Artwork

PREFERRED_LANGUAGE = "eng"


def primary_sort_key(score: int | None, language: str | None, artwork_id: int) -> tuple[int, int, int]:
    """Sort key (ascending = better) for choosing the primary artwork in Python."""
    return (-(score if score is not None else -1), _language_rank(language), artwork_id)


def primary_order_by() -> list[Any]:
    """The same rule as SQL ORDER BY clauses on the artwork table."""
    language_rank = case(
        (Artwork.language == PREFERRED_LANGUAGE, 0),
        (Artwork.language.is_(None), 1),
        else_=2,
    )
    return [Artwork.score.desc().nulls_last(), language_rank, Artwork.id]


def _language_rank(language: str | None) -> int:
    if language == PREFERRED_LANGUAGE:
        return 0
    if language is None:
        return 1
    return 2
