"""The storage key layout contract."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvdb_images.config import CONTENT_TYPES
from tvdb_images.storage import layout

SEED_LAYOUT = re.compile(
    r"^(series|movies|episodes|seasons|people)/[0-9a-f]{2}/[0-9a-f]{2}/\d+/"
    r"(poster|banner|fanart|image|thumbnail|clearlogo|clearart)/(original|large|medium|small|thumbnail)\.[a-z]+$"
)


def test_hash_is_sha256_of_type_and_id() -> None:
    expected = hashlib.sha256(b"series/121361").hexdigest()
    assert layout.content_hash("series", 121361) == expected
    path = layout.artwork_storage_path("series", 121361, "poster", None)
    assert path == f"series/{expected[:2]}/{expected[2:4]}/121361/poster"
    assert layout.rendition_key(path, "thumbnail", "webp") == f"{path}/thumbnail.webp"
    assert SEED_LAYOUT.match(layout.rendition_key(path, "large", "webp"))
    assert layout.original_key(path, "jpeg") == f"{path}/original.jpg"


def test_extra_artwork_of_a_type_gets_its_id_as_a_directory() -> None:
    path = layout.artwork_storage_path("movies", 5, "fanart", 62002)
    assert path.endswith("/5/fanart/62002")
    assert layout.is_layout_key(layout.rendition_key(path, "small", "avif"))


@pytest.mark.parametrize(
    ("content_type", "content_id", "image_type"),
    [("shows", 1, "poster"), ("series", -1, "poster"), ("series", 1, "../etc"), ("series", True, "poster")],
)
def test_bad_values_cannot_become_keys(content_type: str, content_id: int, image_type: str) -> None:
    with pytest.raises(layout.LayoutError):
        layout.artwork_storage_path(content_type, content_id, image_type, None)


def test_foreign_keys_are_not_layout_keys() -> None:
    assert not layout.is_layout_key("series/aa/bb/1/poster/../../x.webp")
    assert not layout.is_layout_key("backup/series/aa/bb/1/poster/large.webp")
    assert not layout.is_layout_key("series/aa/bb/1/poster/huge.webp")


@given(st.sampled_from(CONTENT_TYPES), st.integers(min_value=0, max_value=2**62))
def test_shard_is_the_first_hash_byte_and_prefix_matches(content_type: str, content_id: int) -> None:
    shard = layout.shard_of(content_type, content_id)
    assert shard in layout.SHARDS
    key = layout.rendition_key(
        layout.artwork_storage_path(content_type, content_id, "poster", None), "small", "webp"
    )
    assert key.startswith(layout.partition_prefix(content_type, shard))
    assert SEED_LAYOUT.match(key)


def test_covering_prefixes_merge_whole_hex_groups_only() -> None:
    whole = [f"a{d}" for d in "0123456789abcdef"]
    first_quarter = layout.covering_prefixes("series", layout.SHARDS[:64])
    assert first_quarter == ["series/0", "series/1", "series/2", "series/3"]
    assert layout.covering_prefixes("series", [*whole, "b3"]) == ["series/a", "series/b3/"]
    assert layout.covering_prefixes("movies", ["0f", "00"]) == ["movies/00/", "movies/0f/"]
    with pytest.raises(layout.LayoutError):
        layout.covering_prefixes("games", ["00"])
    with pytest.raises(layout.LayoutError):
        layout.covering_prefixes("series", ["zz"])


@given(st.sampled_from(CONTENT_TYPES), st.sets(st.sampled_from(layout.SHARDS)))
def test_covering_prefixes_select_exactly_the_partitions_keys(content_type: str, shards: set[str]) -> None:
    prefixes = layout.covering_prefixes(content_type, shards)
    for shard in layout.SHARDS:
        key = f"{content_type}/{shard}/00/1/poster/small.webp"
        assert any(key.startswith(p) for p in prefixes) == (shard in shards)
