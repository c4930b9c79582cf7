"""Catalog side of source revalidation: which stored sources are due, and recording what the origin said.

A source is due when the origin has not confirmed or supplied it since `checked_before`. Served
artwork is revalidated: processed artwork, and stale artwork (its last good image is still served), so
a source that turned bad is looked at again and a repaired one clears the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, true, update
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.rows import select_as
from tvdb_images.catalog.scope import Scope
from tvdb_images.catalog.stale import settle_refused, stale_clause


@dataclass(frozen=True)
class RevalidationTask:
    artwork_id: int
    content_type: str
    content_id: int
    source_url: str
    storage_path: str
    source_checksum: str | None
    source_format: str | None
    file_size: int | None
    etag: str | None
    last_modified: str | None


def revalidation_condition(checked_before: datetime | None) -> Any:
    """Artwork whose served image came from a source the origin should be asked about again."""
    processed = and_(
        Artwork.status == ArtworkStatus.PROCESSED.value,
        Artwork.source_checksum.isnot(None),
        Artwork.source_format.isnot(None),
    )
    due = (
        or_(Artwork.source_checked_at.is_(None), Artwork.source_checked_at < checked_before)
        if checked_before is not None
        else true()
    )
    return and_(or_(processed, stale_clause()), Artwork.storage_path.isnot(None), due)


def revalidation_candidates(
    session: Session, scope: Scope, *, checked_before: datetime | None, after_id: int = -1, limit: int = 200
) -> list[RevalidationTask]:
    return select_as(
        session,
        RevalidationTask,
        scope.clause(),
        revalidation_condition(checked_before),
        Artwork.id > after_id,
        limit=limit,
    )


def record_confirmed(
    session: Session,
    task: RevalidationTask,
    *,
    etag: str | None,
    last_modified: str | None,
    replace_validators: bool,
    now: datetime | None = None,
) -> None:
    """The origin still serves the stored source (304, identical bytes, or same size and type).

    A stale artwork whose source turns out to be the stored one again is served as current once more.
    With `replace_validators` (a full 200) the origin's validators replace the recorded ones; after a
    304 only those it sent are updated.
    """
    now = now or datetime.now(UTC)
    values: dict[str, Any] = {"source_checked_at": now}
    if replace_validators:
        values |= {"source_etag": etag, "source_last_modified": last_modified}
    else:
        if etag:
            values["source_etag"] = etag
        if last_modified:
            values["source_last_modified"] = last_modified
    where = and_(Artwork.id == task.artwork_id, Artwork.source_url == task.source_url)
    session.execute(update(Artwork).where(where).values(**values))
    session.execute(
        update(Artwork)
        .where(where, Artwork.stale_since.isnot(None), Artwork.source_checksum == task.source_checksum)
        .values(
            status=ArtworkStatus.PROCESSED.value,
            stale_since=None,
            failure_cause=None,
            failure_detail=None,
            failure_retryable=False,
        )
    )


def record_refused(
    session: Session,
    task: RevalidationTask,
    *,
    cause: str,
    detail: str,
    gone: bool,
    policy: str,
    now: datetime | None = None,
) -> None:
    """The origin now serves something refused (or nothing: 404/410) for this source: the image served
    no longer matches it. Checked now, so it is asked again after a full revalidation period."""
    now = now or datetime.now(UTC)
    session.execute(
        update(Artwork)
        .where(Artwork.id == task.artwork_id, Artwork.source_url == task.source_url)
        .values(
            status=(ArtworkStatus.GONE if gone else ArtworkStatus.FAILED).value,
            failure_cause=cause[:32],
            failure_detail=detail[:2000],
            failure_retryable=False,
            source_checked_at=now,
            last_attempt_at=now,
        )
    )
    settle_refused(session, task.artwork_id, policy=policy, retryable=False, source_url=task.source_url)
