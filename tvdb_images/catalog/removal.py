"""Removing content items and artworks from the catalog, rendition rows with them.

Rendition rows are deleted explicitly before their artwork, so nothing depends on the database
enforcing the foreign key (SQLite without `PRAGMA foreign_keys=ON` does not). Objects in storage are
left alone: once no row references them, orphan cleanup deletes them (after its grace period), the
one place that decides when an object may go. Items that keep some artwork get their source and
local URL columns recomputed, so they never point at removed artwork.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from tvdb_images.catalog import results
from tvdb_images.catalog.importer import SOURCE_URL_COLUMNS
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition
from tvdb_images.catalog.wording import counted

CHUNK = 500  # ids per statement: well under SQLite's bound-parameter limit
EXAMPLES = 20

T = TypeVar("T")


@dataclass
class RemovalReport:
    dry_run: bool
    items: int = 0  # content rows (series, movies, ...) removed or that would be
    artworks: int = 0
    renditions: int = 0
    items_updated: int = 0  # items that keep other artwork and had their URL columns recomputed
    examples: list[str] = field(default_factory=list)  # "artwork 12 (series/81189 poster)", "series/81189"
    not_found: list[str] = field(
        default_factory=list
    )  # named but not in the catalog: "artwork 7", "series/9"

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{verb} {counted(self.items, 'item')}, {counted(self.artworks, 'artwork')} and"
            f" {counted(self.renditions, 'rendition')}"
            "; their stored objects are left to orphan cleanup"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Removal:
    """What to remove: whole items (their content row and every artwork) and single artworks."""

    items: frozenset[tuple[str, int]] = frozenset()
    artwork_ids: frozenset[int] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.items and not self.artwork_ids


def remove(session: Session, removal: Removal, *, dry_run: bool = False) -> RemovalReport:
    """Delete (or, in a dry run, count) the rows `removal` names, all in the caller's transaction."""
    report = RemovalReport(dry_run=dry_run)
    artworks = _artworks_of(session, removal)
    artwork_ids = sorted(artworks)
    report.artworks = len(artwork_ids)
    report.renditions = sum(
        session.scalar(
            select(func.count()).select_from(ArtworkRendition).where(ArtworkRendition.artwork_id.in_(chunk))
        )
        or 0
        for chunk in _chunks(artwork_ids)
    )
    content_rows = _existing_content_rows(session, removal.items)
    report.items = len(content_rows)
    report.examples = [f"{t}/{i}" for t, i in sorted(content_rows)][:EXAMPLES]
    report.examples += [f"artwork {a} ({t}/{i} {kind})" for a, (t, i, kind) in sorted(artworks.items())][
        : EXAMPLES - len(report.examples)
    ]
    items_with_artwork = {(t, i) for t, i, _ in artworks.values()}
    report.not_found = [f"{t}/{i}" for t, i in sorted(removal.items - content_rows - items_with_artwork)]
    report.not_found += [f"artwork {a}" for a in sorted(removal.artwork_ids - set(artworks))]
    # Items that lose some artwork but stay: their URL columns are recomputed from what is left.
    survivors = items_with_artwork - set(removal.items)
    if dry_run:
        return report

    for chunk in _chunks(artwork_ids):
        session.execute(delete(ArtworkRendition).where(ArtworkRendition.artwork_id.in_(chunk)))
        session.execute(delete(Artwork).where(Artwork.id.in_(chunk)))
    for content_type, ids in results.ids_by_content_type(content_rows).items():
        model = CONTENT_MODELS[content_type]
        for chunk in _chunks(ids):
            session.execute(delete(model).where(model.id.in_(chunk)))
    report.items_updated = refresh_item_urls(session, survivors)
    return report


def refresh_item_urls(session: Session, items: Iterable[tuple[str, int]]) -> int:
    """Recompute items' source URL columns (`poster_url`, ...) and local URLs from their artwork."""
    items = sorted(set(items))
    updated = 0
    for chunk in _chunks(items):
        for content_type, ids in results.ids_by_content_type(chunk).items():
            updated += _refresh_source_urls(session, content_type, ids)
        results.refresh_content_local_urls(session, chunk)
    return updated


def _refresh_source_urls(session: Session, content_type: str, ids: list[int]) -> int:
    model = CONTENT_MODELS[content_type]
    existing = set(session.scalars(select(model.id).where(model.id.in_(ids))))
    if not existing:
        return 0
    best = results.primary_artwork_values(session, content_type, existing, Artwork.source_url)
    updates = [
        {"id": content_id}
        | {column: best.get((content_id, image_type)) for image_type, column in SOURCE_URL_COLUMNS.items()}
        for content_id in sorted(existing)
    ]
    session.execute(update(model), updates)
    return len(updates)


def _artworks_of(session: Session, removal: Removal) -> dict[int, tuple[str, int, str]]:
    """Artwork ids to remove -> (content_type, content_id, image_type)."""
    found: dict[int, tuple[str, int, str]] = {}
    columns = (Artwork.id, Artwork.content_type, Artwork.content_id, Artwork.image_type)
    for chunk in _chunks(sorted(removal.artwork_ids)):
        for row in session.execute(select(*columns).where(Artwork.id.in_(chunk))):
            found[row.id] = (row.content_type, row.content_id, row.image_type)
    for item_chunk in _chunks(sorted(removal.items)):
        statement = select(*columns).where(tuple_(Artwork.content_type, Artwork.content_id).in_(item_chunk))
        for row in session.execute(statement):
            found[row.id] = (row.content_type, row.content_id, row.image_type)
    return found


def _existing_content_rows(session: Session, items: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for content_type, ids in results.ids_by_content_type(items).items():
        model = CONTENT_MODELS[content_type]
        for chunk in _chunks(ids):
            found.update(
                (content_type, i) for i in session.scalars(select(model.id).where(model.id.in_(chunk)))
            )
    return found


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
