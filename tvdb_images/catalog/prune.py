"""`catalog import --prune`: a full export is the whole catalog, so whatever it lacks is removed.

The file is read once more after the import to learn every item and artwork it names. Pruning is
refused when any line was invalid or skipped (that item would look absent and be removed), and when
the file names nothing at all: an empty or wrong file must not empty the catalog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tvdb_images.catalog.importer import ContentRecord
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork
from tvdb_images.catalog.removal import Removal
from tvdb_images.catalog.wording import counted


class PruneRefused(ValueError):
    """The export cannot be trusted to be complete; nothing is removed."""


@dataclass
class ExportContents:
    """Every item and artwork a full export names."""

    items: set[tuple[str, int]] = field(default_factory=set)
    artwork_ids: set[int] = field(default_factory=set)
    invalid_lines: int = 0


def read_export(path: Path) -> ExportContents:
    contents = ExportContents()
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = ContentRecord.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                contents.invalid_lines += 1
                continue
            contents.items.add((record.content_type, record.id))
            contents.artwork_ids.update(artwork.id for artwork in record.artworks)
    return contents


def absent_from(session: Session, contents: ExportContents, *, import_errors: int = 0) -> Removal:
    """What the catalog holds that the export does not: whole items, and artworks of kept items."""
    if contents.invalid_lines:
        lines = counted(contents.invalid_lines, "line")
        raise PruneRefused(f"not pruning: {lines} of the file invalid; an item named there would look absent")
    if import_errors:
        raise PruneRefused(f"not pruning: the import skipped {counted(import_errors, 'record')} (see above)")
    if not contents.items:
        raise PruneRefused("not pruning: the file names no items (an empty export would empty the catalog)")
    items: set[tuple[str, int]] = set()
    for content_type, model in CONTENT_MODELS.items():
        for content_id in session.scalars(select(model.id)).yield_per(10_000):
            if (content_type, content_id) not in contents.items:
                items.add((content_type, content_id))
    artwork_ids: set[int] = set()
    rows = session.execute(select(Artwork.id, Artwork.content_type, Artwork.content_id)).yield_per(10_000)
    for artwork_id, content_type, content_id in rows:
        if (content_type, content_id) not in contents.items:
            items.add((content_type, content_id))  # an item with artwork but no content row
        elif artwork_id not in contents.artwork_ids:
            artwork_ids.add(artwork_id)
    return Removal(items=frozenset(items), artwork_ids=frozenset(artwork_ids))
