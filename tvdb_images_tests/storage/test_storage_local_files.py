"""The local backend on disk: modes a web server running as another user can read, whatever the umask,
no empty directories left behind by deletes, and a write whose directory a concurrent delete removed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvdb_images.config import ConfigError, load_settings
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.local import LocalObjectStore

KEY = "series/ab/cd/1/poster/large.webp"


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_objects_are_world_readable_under_a_strict_umask(tmp_path: Path, strict_umask: None) -> None:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    store.put(Bucket.THUMBNAILS, KEY, b"webp", content_type="image/webp")
    bucket = tmp_path / "storage" / "thumbnails"
    assert _mode(bucket / KEY) == 0o644
    directory = bucket
    for part in Path(KEY).parent.parts:
        directory = directory / part
        assert _mode(directory) == 0o755, directory
    assert _mode(bucket) == 0o755 and _mode(tmp_path / "storage") == 0o755
    store.put(Bucket.THUMBNAILS, KEY, b"webp again", content_type="image/webp")  # a replaced object too
    assert _mode(bucket / KEY) == 0o644


def test_modes_come_from_the_settings(
    tmp_path: Path, strict_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "storage"))
    monkeypatch.setenv("LOCAL_STORAGE_FILE_MODE", "0640")
    monkeypatch.setenv("LOCAL_STORAGE_DIR_MODE", "0750")
    store = store_from_settings(load_settings())
    store.ensure_buckets()
    store.put(Bucket.ORIGINALS, KEY, b"jpeg", content_type="image/jpeg")
    root = tmp_path / "storage" / "tvdb-originals"
    assert _mode(root / KEY) == 0o640
    assert _mode((root / KEY).parent) == 0o750


@pytest.mark.parametrize("value", ["0999", "rw-r--r--", "1777"])
def test_a_bad_mode_stops_at_start(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STORAGE_FILE_MODE", value)
    with pytest.raises(ConfigError, match="LOCAL_STORAGE_FILE_MODE"):
        load_settings()


def test_deleting_the_last_object_removes_its_empty_directories(local_store: LocalObjectStore) -> None:
    other = "series/ab/cd/2/poster/large.webp"
    for key in (KEY, "series/ab/cd/1/poster/small.webp", other):
        local_store.put(Bucket.THUMBNAILS, key, b"x", content_type="image/webp")
    bucket = local_store.root / "thumbnails"
    local_store.delete(Bucket.THUMBNAILS, [KEY])
    assert (bucket / "series/ab/cd/1/poster").is_dir()  # still holds small.webp
    local_store.delete(Bucket.THUMBNAILS, ["series/ab/cd/1/poster/small.webp"])
    assert not (bucket / "series/ab/cd/1").exists()
    assert (bucket / "series/ab/cd/2/poster/large.webp").is_file()
    local_store.delete(Bucket.THUMBNAILS, [other])
    assert not (bucket / "series").exists()
    assert bucket.is_dir()  # the bucket itself stays
    local_store.put(Bucket.THUMBNAILS, KEY, b"back", content_type="image/webp")
    assert local_store.get(Bucket.THUMBNAILS, KEY) == b"back"


def _losing_directories(
    tmp_path: Path, times: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalObjectStore, list[Path]]:
    """A store that loses each directory it has just made, `times` times (a concurrent delete of the
    then empty directory between making it and writing the file into it), and the directories lost."""
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    make = store._make_directories
    lost: list[Path] = []

    def make_then_lose(directory: Path, top: Path) -> None:
        make(directory, top)
        if len(lost) < times:
            directory.rmdir()
            lost.append(directory)

    monkeypatch.setattr(store, "_make_directories", make_then_lose)
    return store, lost


def test_a_write_makes_a_directory_a_concurrent_delete_removed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, lost = _losing_directories(tmp_path, 2, monkeypatch)
    store.put(Bucket.THUMBNAILS, KEY, b"bytes", content_type="image/webp")
    assert len(lost) == 2
    assert store.get(Bucket.THUMBNAILS, KEY) == b"bytes"


def test_a_write_gives_up_after_three_lost_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, lost = _losing_directories(tmp_path, 3, monkeypatch)
    with pytest.raises(FileNotFoundError):
        store.put(Bucket.THUMBNAILS, KEY, b"bytes", content_type="image/webp")
    assert len(lost) == 3
