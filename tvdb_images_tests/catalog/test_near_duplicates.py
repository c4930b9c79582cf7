"""Near-duplicate clustering without a database: the candidate pairs miss no pair within the distance,
the aspect ratio and distance rules, transitive clusters, and the best member."""

from __future__ import annotations

import itertools
import random

from tvdb_images.catalog.near_duplicates import (
    MAX_DISTANCE,
    Member,
    _candidate_pairs,
    cluster_members,
)
from tvdb_images.imaging.perceptual import hamming


def _member(artwork_id: int, phash: int, *, checksum: str = "", size=(1000, 1500), score: int = 0) -> Member:
    return Member(
        artwork_id=artwork_id,
        content_type="series",
        content_id=artwork_id,
        image_type="poster",
        source_checksum=checksum or f"sum{artwork_id}",
        render_signature="webp",
        width=size[0],
        height=size[1],
        score=score,
        perceptual_hash=phash,
        rendition_bytes=100,
        source_bytes=1000,
    )


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def test_the_candidate_pairs_hold_every_pair_within_the_distance() -> None:
    rng = random.Random(7)
    hashes = []
    for _ in range(60):
        base = rng.getrandbits(64)
        hashes.append(base)
        for _ in range(3):  # neighbours at 0..MAX_DISTANCE + 2 bits, anywhere in the 64
            hashes.append(_flip(base, rng.sample(range(64), rng.randint(0, MAX_DISTANCE + 2))))
    expected = {
        (i, j) for i, j in itertools.combinations(range(len(hashes)), 2) if hamming(hashes[i], hashes[j]) <= 8
    }
    assert len(expected) > 100
    assert expected <= _candidate_pairs(hashes)


def test_distance_and_aspect_ratio_decide_and_clusters_are_transitive() -> None:
    base = 0x0123_4567_89AB_CDEF
    members = [
        _member(1, base),
        _member(2, _flip(base, list(range(8)))),  # 8 bits from 1: near
        _member(3, _flip(base, list(range(20, 30)))),  # 10 bits from 1, more from the others: alone
        _member(4, _flip(base, list(range(12)))),  # 4 from 2, 12 from 1: joins 1's cluster through 2
        _member(5, _flip(base, [1]), size=(1000, 1400)),  # 1 bit, but 7% another shape
        _member(6, base, checksum="sum1"),  # byte-identical to 1
    ]
    clusters = cluster_members(members)
    assert [sorted(m.artwork_id for m in c.members) for c in clusters] == [[1, 2, 4, 6]]
    cluster = clusters[0]
    assert cluster.sources == 3
    assert cluster.bytes_reclaimable == 200  # 2 and 4; 6 is 1's own bytes


def test_the_best_member_is_the_largest_then_the_best_scored() -> None:
    base = 0x0F0F_F0F0_3C3C_C3C3
    members = [
        _member(1, base, size=(680, 1000), score=90),
        _member(2, _flip(base, [3]), size=(1000, 1470), score=10),
        _member(3, _flip(base, [5]), size=(1000, 1470), score=20),
    ]
    [cluster] = cluster_members(members)
    assert cluster.best.artwork_id == 3
    assert [m.artwork_id for m in cluster.members] == [3, 1, 2]


def test_one_source_alone_is_no_cluster() -> None:
    assert cluster_members([_member(1, 5, checksum="x"), _member(2, 5, checksum="x")]) == []
