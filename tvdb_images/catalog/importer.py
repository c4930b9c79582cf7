"""Load a JSON Lines catalog (one content item a line) into the catalog tables.

Importing again upserts: names and artwork metadata are refreshed; an artwork whose source URL changed
goes back to `pending` (attempts and failure cleared) so the next sync downloads it again; artwork
whose URL is unchanged keeps its status and local copy. Bad lines are reported with their line
number and skipped; the rest of the file still loads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session

from tvdb_images.catalog import status_counts
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkStatus
from tvdb_images.catalog.selection import primary_sort_key
from tvdb_images.catalog.upsert import upsert
from tvdb_images.config import IMAGE_TYPES
from tvdb_images.storage import layout
from tvdb_images.wording import plural

# Content-table column that holds the source URL of an item's primary artwork of each type.
SOURCE_URL_COLUMNS: dict[str, str] = {
    "poster": "poster_url",
    "banner": "banner_url",
    "fanart": "fanart_url",
    "image": "image_url",
    "thumbnail": "thumbnail_url",
}


class ArtworkRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int = Field(ge=0)
    type: str
    url: str = Field(min_length=1, max_length=4096)
    language: str | None = Field(default=None, max_length=16)
    score: int | None = None
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.lower()
        if value not in IMAGE_TYPES:
            raise ValueError(f"unknown artwork type {value!r}; expected one of {', '.join(IMAGE_TYPES)}")
        return value


class ContentRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content_type: Literal["series", "movies", "episodes", "seasons", "people"]
    id: int = Field(ge=0)
    name: str | None = None
    artworks: list[ArtworkRecord] = Field(default_factory=list)


@dataclass
class ImportReport:
    items: int = 0
    artworks_new: int = 0
    artworks_changed: int = 0
    artworks_unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def artworks(self) -> int:
        return self.artworks_new + self.artworks_changed + self.artworks_unchanged

    def summary(self) -> str:
        text = (
            f"{plural(self.items, 'item')}, {plural(self.artworks, 'artwork')} "
            f"({self.artworks_new} new, {self.artworks_changed} changed, {self.artworks_unchanged} unchanged)"
        )
        if self.errors:
            text += f", {plural(len(self.errors), 'invalid line')} skipped"
        return text


def import_catalog_file(catalog: Catalog, path: Path, *, batch_size: int = 500) -> ImportReport:
    with path.open("r", encoding="utf-8") as handle:
        return import_catalog_lines(catalog, handle, batch_size=batch_size)


def import_catalog_lines(
    catalog: Catalog, lines: Iterable[str] | IO[str], *, batch_size: int = 500
) -> ImportReport:
    report = ImportReport()
    batch: list[ContentRecord] = []
    for record in _parse(lines, report):
        batch.append(record)
        if len(batch) >= batch_size:
            _import_batch(catalog, batch, report)
            batch = []
    if batch:
        _import_batch(catalog, batch, report)
    if report.items:  # each batch appended count deltas (one per row on SQLite): compact them
        status_counts.fold(catalog.engine)
    return report


def _parse(lines: Iterable[str], report: ImportReport) -> Iterator[ContentRecord]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield ContentRecord.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            report.errors.append(f"line {number}: not valid JSON: {exc.msg}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'line'}: {err['msg']}" for err in exc.errors()
            )
            report.errors.append(f"line {number}: {problems}")


def _import_batch(catalog: Catalog, records: list[ContentRecord], report: ImportReport) -> None:
    # The last line wins when a file repeats an item or an artwork.
    items: dict[tuple[str, int], ContentRecord] = {}
    for record in records:
        items[(record.content_type, record.id)] = record
    now = datetime.now(UTC)
    with catalog.session() as session:
        _upsert_content(session, items.values(), now)
        _upsert_artwork(session, list(items.values()), now, report)
    report.items += len(items)


def _upsert_content(session: Session, records: Iterable[ContentRecord], now: datetime) -> None:
    by_type: dict[str, list[dict[str, object]]] = defaultdict(list)
    for record in records:
        row: dict[str, object] = {"id": record.id, "name": record.name, "updated_at": now}
        best: dict[str, ArtworkRecord] = {}
        for artwork in sorted(record.artworks, key=lambda a: primary_sort_key(a.score, a.language, a.id)):
            best.setdefault(artwork.type, artwork)
        for image_type, column in SOURCE_URL_COLUMNS.items():
            row[column] = best[image_type].url if image_type in best else None
        by_type[record.content_type].append(row)
    for content_type, rows in by_type.items():
        model = CONTENT_MODELS[content_type]
        update_columns = ["name", "updated_at", *SOURCE_URL_COLUMNS.values()]
        session.execute(upsert(session, model, rows, index_elements=["id"], update_columns=update_columns))


def _upsert_artwork(
    session: Session, records: list[ContentRecord], now: datetime, report: ImportReport
) -> None:
    incoming: dict[int, tuple[ContentRecord, ArtworkRecord]] = {}
    for record in records:
        for artwork in record.artworks:
            incoming[artwork.id] = (record, artwork)
    if not incoming:
        return

    existing = {
        row.id: row
        for row in session.execute(
            select(Artwork.id, Artwork.content_type, Artwork.content_id, Artwork.source_url).where(
                Artwork.id.in_(list(incoming))
            )
        )
    }
    taken_paths = _taken_storage_paths(session, {(r.content_type, r.id) for r in records})

    new_rows: list[dict[str, object]] = []
    changed_rows: list[dict[str, object]] = []
    refreshed_rows: list[dict[str, object]] = []
    ordered = sorted(
        incoming.values(), key=lambda pair: primary_sort_key(pair[1].score, pair[1].language, pair[1].id)
    )
    for record, artwork in ordered:
        metadata = {
            "language": artwork.language,
            "score": artwork.score,
            "width": artwork.width,
            "height": artwork.height,
        }
        current = existing.get(artwork.id)
        if current is None:
            path = layout.artwork_storage_path(record.content_type, record.id, artwork.type, None)
            if path in taken_paths:
                path = layout.artwork_storage_path(record.content_type, record.id, artwork.type, artwork.id)
            taken_paths.add(path)
            new_rows.append(
                {
                    "id": artwork.id,
                    "content_type": record.content_type,
                    "content_id": record.id,
                    "source_url": artwork.url,
                    "shard": layout.shard_of(record.content_type, record.id),
                    "storage_path": path,
                    "status": ArtworkStatus.PENDING.value,
                    "attempts": 0,
                    "failure_retryable": False,
                    "image_type": artwork.type,
                    "created_at": now,
                    "updated_at": now,
                    **metadata,
                }
            )
            report.artworks_new += 1
        elif (current.content_type, current.content_id) != (record.content_type, record.id):
            report.errors.append(
                f"artwork {artwork.id}: belongs to {current.content_type}/{current.content_id} "
                "in the catalog, "
                f"not {record.content_type}/{record.id}; skipped"
            )
        elif current.source_url != artwork.url:
            changed_rows.append(
                {
                    "id": artwork.id,
                    "source_url": artwork.url,
                    "status": ArtworkStatus.PENDING.value,
                    "attempts": 0,
                    "failure_cause": None,
                    "failure_detail": None,
                    "failure_retryable": False,
                    "updated_at": now,
                    **metadata,
                }
            )
            report.artworks_changed += 1
        else:
            refreshed_rows.append({"id": artwork.id, **metadata})
            report.artworks_unchanged += 1

    if new_rows:
        session.execute(insert(Artwork), new_rows)
    if changed_rows:
        session.execute(update(Artwork), changed_rows)
        # An image already served no longer matches the new URL: it is stale until the new source is
        # rendered (docs/operations.md, "A changed source that turns out bad").
        session.execute(
            update(Artwork)
            .where(
                Artwork.id.in_([row["id"] for row in changed_rows]),
                Artwork.local_image_url.isnot(None),
                Artwork.stale_since.is_(None),
            )
            .values(stale_since=now)
        )
    if refreshed_rows:
        session.execute(update(Artwork), refreshed_rows)


def _taken_storage_paths(session: Session, items: set[tuple[str, int]]) -> set[str]:
    if not items:
        return set()
    rows = session.execute(
        select(Artwork.storage_path).where(tuple_(Artwork.content_type, Artwork.content_id).in_(list(items)))
    )
    return {path for (path,) in rows if path}
