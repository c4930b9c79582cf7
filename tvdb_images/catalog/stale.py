"""Stale images: what the catalog does with the last good image when its source changes and turns bad.

Policy (STALE_IMAGE_POLICY, docs/operations.md "A changed source that turns out bad"):

- `serve` (default): the artwork keeps its renditions and local URLs, so clients keep getting the last
  good image, but the row carries `stale_since` and its `failure_cause`: the API's metadata says
  `stale: true`, image responses carry `X-Artwork-Stale: true`, and the `no_stale_images` asset check
  counts it, until an operator decides (fix the URL, refresh it, or withdraw it) or a later sync or
  revalidation brings a good source, which clears the mark.
- `withdraw`: a final refusal removes the renditions from the catalog at once; the API answers for
  the item's next stored artwork, or 404 `image_not_stored` naming the cause. The objects are left to
  orphan cleanup.

An artwork is stale while it has a served image (`local_image_url`) and `stale_since` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.results import refresh_content_local_urls
from tvdb_images.catalog.rows import select_as
from tvdb_images.catalog.scope import Scope

SERVE = "serve"
WITHDRAW = "withdraw"
POLICIES = (SERVE, WITHDRAW)


@dataclass(frozen=True)
class StaleArtwork:
    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    source_url: str
    status: str
    failure_cause: str | None
    stale_since: datetime


def stale_clause() -> Any:
    return and_(Artwork.stale_since.isnot(None), Artwork.local_image_url.isnot(None))


def settle_refused(
    session: Session, artwork_id: int, *, policy: str, retryable: bool, source_url: str | None = None
) -> None:
    """After a final failure: the image still served no longer matches the source; mark or withdraw it.
    With `source_url`, only if the row still has that URL (a newer one is the next run's business)."""
    if retryable:
        return
    now = datetime.now(UTC)
    where = [Artwork.id == artwork_id, Artwork.local_image_url.isnot(None)]
    if source_url is not None:
        where.append(Artwork.source_url == source_url)
    marked = session.execute(
        update(Artwork).where(*where).values(stale_since=func.coalesce(Artwork.stale_since, now))
    )
    if policy == WITHDRAW and cast(CursorResult[Any], marked).rowcount:
        withdraw_images(session, [artwork_id])


def withdraw_images(session: Session, artwork_ids: Sequence[int]) -> int:
    """Stop serving these artworks' images: their rendition rows and local URLs go (the objects are
    left to orphan cleanup), and their items' `local_*_url` move to the next served artwork."""
    if not artwork_ids:
        return 0
    rows = session.execute(
        select(Artwork.id, Artwork.content_type, Artwork.content_id).where(
            Artwork.id.in_(list(artwork_ids)), Artwork.local_image_url.isnot(None)
        )
    ).all()
    ids = [row.id for row in rows]
    if not ids:
        return 0
    session.execute(delete(ArtworkRendition).where(ArtworkRendition.artwork_id.in_(ids)))
    session.execute(
        update(Artwork)
        .where(Artwork.id.in_(ids))
        .values(
            local_image_url=None,
            local_thumbnail_url=None,
            stale_since=None,
            # The placeholders describe the renditions withdrawn here.
            thumbhash=None,
            blurhash=None,
            dominant_color=None,
            updated_at=datetime.now(UTC),
        )
    )
    refresh_content_local_urls(session, {(row.content_type, row.content_id) for row in rows})
    return len(ids)


def count_stale(session: Session, scope: Scope) -> int:
    return (
        session.scalar(select(func.count()).select_from(Artwork).where(scope.clause(), stale_clause())) or 0
    )


def count_stale_by_partition(session: Session, scope: Scope) -> dict[tuple[str, str], int]:
    """Stale artwork per (content_type, shard) in `scope`, in one grouped query."""
    rows = session.execute(
        select(Artwork.content_type, Artwork.shard, func.count())
        .where(scope.clause(), stale_clause())
        .group_by(Artwork.content_type, Artwork.shard)
    )
    # Stale artwork was stored, so it has its shard.
    return {(content_type, cast(str, shard)): count for content_type, shard, count in rows}


def list_stale(session: Session, scope: Scope, *, limit: int = 20) -> list[StaleArtwork]:
    return select_as(
        session,
        StaleArtwork,
        scope.clause(),
        stale_clause(),
        order_by=(Artwork.stale_since, Artwork.id),
        limit=limit,
    )


def withdraw_stale(session: Session, scope: Scope, *, dry_run: bool = False) -> int:
    """The operator's decision for stale artwork in `scope`: withdraw their last good images."""
    ids = list(session.scalars(select(Artwork.id).where(scope.clause(), stale_clause())))
    return len(ids) if dry_run else withdraw_images(session, ids)
