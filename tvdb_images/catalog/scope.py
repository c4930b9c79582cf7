"""Which artwork a run works on: the `Scope` every catalog read and write of a stage narrows by."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_

from tvdb_images.catalog.models import Artwork


@dataclass(frozen=True)
class Scope:
    """Which artwork a run works on: Dagster partitions, one content item, or a content type."""

    partitions: tuple[tuple[str, str], ...] | None = None  # (content_type, shard)
    item: tuple[str, int] | None = None  # (content_type, content_id)
    content_type: str | None = None
    artwork_ids: tuple[int, ...] | None = None

    def clause(self) -> Any:
        clauses: list[Any] = []
        if self.partitions is not None:
            by_type: dict[str, list[str]] = defaultdict(list)
            for content_type, shard in self.partitions:
                by_type[content_type].append(shard)
            if not by_type:
                return false()
            clauses.append(
                or_(
                    *(
                        and_(Artwork.content_type == content_type, Artwork.shard.in_(sorted(shards)))
                        for content_type, shards in sorted(by_type.items())
                    )
                )
            )
        if self.item is not None:
            clauses.append(and_(Artwork.content_type == self.item[0], Artwork.content_id == self.item[1]))
        if self.content_type is not None:
            clauses.append(Artwork.content_type == self.content_type)
        if self.artwork_ids is not None:
            clauses.append(Artwork.id.in_(self.artwork_ids))
        return and_(*clauses) if clauses else Artwork.id.isnot(None)
