"""Read artwork rows straight into a stage's task dataclass: the dataclass's fields are the column list.

Download, render, revalidation and stale listings each read a few artwork columns into a frozen
dataclass. Naming the columns once, by the dataclass's fields, keeps a query and its task from
drifting apart (a column added to one and not the other, or two swapped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork

T = TypeVar("T")

# Task fields whose artwork column has another name; every other field is the column of its name.
COLUMN_OF_FIELD: dict[str, Any] = {
    "artwork_id": Artwork.id,
    "previous_checksum": Artwork.source_checksum,
    "previous_format": Artwork.source_format,
    "etag": Artwork.source_etag,
    "last_modified": Artwork.source_last_modified,
}


def columns_of(row_type: type[Any]) -> list[Any]:
    """The artwork columns a task dataclass is read from, in its field order."""
    columns = []
    for field in fields(row_type):
        column = COLUMN_OF_FIELD.get(field.name, getattr(Artwork, field.name, None))
        if column is None:
            raise TypeError(f"{row_type.__name__}.{field.name} names no artwork column")
        columns.append(column)
    return columns


def select_as(
    session: Session,
    row_type: type[T],
    *where: Any,
    order_by: Sequence[Any] = (Artwork.id,),
    limit: int | None = None,
) -> list[T]:
    """Artwork rows that meet `where`, each as a `row_type`."""
    statement = select(*columns_of(row_type)).where(*where).order_by(*order_by)
    if limit is not None:
        statement = statement.limit(limit)
    return [row_type(*row) for row in session.execute(statement)]
