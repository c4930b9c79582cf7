"""Clusters of near-identical artwork: the same picture at another size or quality (other source bytes,
so exact deduplication cannot see it), found by perceptual hash.

Two processed artworks are near-identical when their pHashes differ in at most `MAX_DISTANCE` bits and
their aspect ratios within `MAX_ASPECT_DIFFERENCE` (a crop of a picture can hash close to it, a crop
changes the shape). Clusters are the connected components of that relation (union-find), over groups
of byte-identical sources (one node each: they already share renditions). Only clusters of two or more
distinct sources are reported.

Candidate pairs come from multi-index hashing: the 64 bits split into `MAX_DISTANCE + 1` chunks, and
two hashes at most `MAX_DISTANCE` apart agree on at least one chunk (pigeonhole), so only hashes that
share a chunk are compared: about linear in the catalog, not quadratic.

The best source of a cluster is the largest (source pixels), then the highest score, then the lowest
id: what serving the whole cluster from one member (DEDUP_NEAR_DUPLICATES) would serve.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.signatures import MIRROR_SIGNATURE
from tvdb_images.imaging.perceptual import HASH_BITS, hamming, to_unsigned

MAX_DISTANCE = 8  # bits: re-encodes and resizes land at 0-4, unrelated pictures around 32
MAX_ASPECT_DIFFERENCE = 0.02  # relative


@dataclass(frozen=True)
class Member:
    """One processed artwork with a perceptual hash; `bytes` counts the objects its own rows name."""

    artwork_id: int
    content_type: str
    content_id: int
    image_type: str
    source_checksum: str
    render_signature: str
    width: int
    height: int
    score: int
    perceptual_hash: int  # unsigned
    rendition_bytes: int  # its own (unshared) renditions
    source_bytes: int  # its stored source

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass
class Cluster:
    best: Member
    members: list[Member] = field(default_factory=list)  # every member, the best first

    @property
    def sources(self) -> int:
        return len({m.source_checksum for m in self.members})

    @property
    def bytes(self) -> int:
        """Everything the cluster's members store: their own renditions and their sources."""
        return sum(m.rendition_bytes + m.source_bytes for m in self.members)

    @property
    def bytes_reclaimable(self) -> int:
        """The renditions of members not byte-identical to the best: what serving the best's saves."""
        return sum(m.rendition_bytes for m in self.members if m.source_checksum != self.best.source_checksum)


def best_of(members: list[Member]) -> Member:
    return min(members, key=lambda m: (-m.area, -m.score, m.artwork_id))


def near(a: Member, b: Member) -> bool:
    if hamming(a.perceptual_hash, b.perceptual_hash) > MAX_DISTANCE:
        return False
    if not (a.width and a.height and b.width and b.height):
        return False
    ratio_a, ratio_b = a.width / a.height, b.width / b.height
    return abs(ratio_a - ratio_b) <= MAX_ASPECT_DIFFERENCE * max(ratio_a, ratio_b)


def find_clusters(session: Session) -> list[Cluster]:
    """Every cluster of 2+ distinct sources, largest reclaimable bytes first."""
    return cluster_members(load_members(session))


def cluster_members(members: list[Member]) -> list[Cluster]:
    # One node per distinct source: byte-identical ones hash alike and already share.
    nodes: dict[str, list[Member]] = defaultdict(list)
    for member in members:
        nodes[member.source_checksum].append(member)
    keys = list(nodes)
    heads = [nodes[k][0] for k in keys]
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in _candidate_pairs([h.perceptual_hash for h in heads]):
        if near(heads[i], heads[j]):
            parent[root(i)] = root(j)
    groups: dict[int, list[Member]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[root(i)].extend(nodes[key])
    clusters = []
    for group in groups.values():
        if len({m.source_checksum for m in group}) < 2:
            continue
        best = best_of(group)
        rest = sorted((m for m in group if m is not best), key=lambda m: m.artwork_id)
        clusters.append(Cluster(best=best, members=[best, *rest]))
    clusters.sort(key=lambda c: (-c.bytes_reclaimable, c.best.artwork_id))
    return clusters


def _chunks() -> list[tuple[int, int]]:
    """(shift, width) of `MAX_DISTANCE + 1` chunks covering the 64 bits."""
    count = MAX_DISTANCE + 1
    widths = [HASH_BITS // count + (1 if i < HASH_BITS % count else 0) for i in range(count)]
    out, shift = [], 0
    for width in widths:
        out.append((shift, width))
        shift += width
    return out


def _candidate_pairs(hashes: list[int]) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for shift, width in _chunks():
        buckets: dict[int, list[int]] = defaultdict(list)
        mask = (1 << width) - 1
        for index, value in enumerate(hashes):
            buckets[(value >> shift) & mask].append(index)
        for bucket in buckets.values():
            for n, i in enumerate(bucket):
                for j in bucket[n + 1 :]:
                    pairs.add((i, j))
    return pairs


def load_members(session: Session) -> list[Member]:
    """Processed, current artwork with a perceptual hash, and the bytes of what it stores itself."""
    own_bytes = (
        select(ArtworkRendition.artwork_id, func.sum(ArtworkRendition.bytes).label("bytes"))
        .where(ArtworkRendition.shared.is_(False))
        .group_by(ArtworkRendition.artwork_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Artwork.id,
            Artwork.content_type,
            Artwork.content_id,
            Artwork.image_type,
            Artwork.source_checksum,
            Artwork.render_signature,
            Artwork.source_width,
            Artwork.source_height,
            Artwork.score,
            Artwork.perceptual_hash,
            own_bytes.c.bytes,
            Artwork.file_size,
        )
        .outerjoin(own_bytes, own_bytes.c.artwork_id == Artwork.id)
        .where(
            Artwork.status == ArtworkStatus.PROCESSED.value,
            Artwork.perceptual_hash.isnot(None),
            Artwork.source_checksum.isnot(None),
            Artwork.render_signature.isnot(None),
            Artwork.render_signature != MIRROR_SIGNATURE,
            Artwork.stale_since.is_(None),
        )
        .order_by(Artwork.id)
    ).all()
    return [
        Member(
            artwork_id=row[0],
            content_type=row[1],
            content_id=row[2],
            image_type=row[3],
            source_checksum=str(row[4]),  # the query keeps only rows that have both
            render_signature=str(row[5]),
            width=row[6] or 0,
            height=row[7] or 0,
            score=row[8] or 0,
            perceptual_hash=to_unsigned(row[9] or 0),  # never None: filtered above
            rendition_bytes=int(row[10] or 0),
            source_bytes=int(row[11] or 0),
        )
        for row in rows
    ]
