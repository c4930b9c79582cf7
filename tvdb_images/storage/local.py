"""Local-filesystem object store: the embedded default, so a new user needs no server at all.

Each bucket is a directory; keys are relative paths below it. Writes go to a temporary file in the
same directory and are renamed into place, so a crash never leaves a half-written image under a key.
Files and directories get explicit modes (0644 and 0755 by default, whatever the process umask), so a
web server running as another user can serve the thumbnails directory as it is. Deleting a key removes
the directories it leaves empty, up to the bucket directory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from tvdb_images.retrying import retrying
from tvdb_images.storage.base import Bucket, ObjectInfo, ObjectNotFound, ObjectStream, StorageError
from tvdb_images.storage.layout import MIME_BY_EXTENSION

DEFAULT_FILE_MODE = 0o644
DEFAULT_DIRECTORY_MODE = 0o755


class LocalObjectStore:
    backend = "local"

    def __init__(
        self,
        root: Path,
        *,
        bucket_names: dict[Bucket, str] | None = None,
        cdn_base_url: str | None = None,
        file_mode: int = DEFAULT_FILE_MODE,
        directory_mode: int = DEFAULT_DIRECTORY_MODE,
    ) -> None:
        self.root = Path(root).resolve()
        self.bucket_names = bucket_names or {b: b.value for b in Bucket}
        self.cdn_base_url = cdn_base_url
        self.file_mode = file_mode
        self.directory_mode = directory_mode

    def ensure_buckets(self) -> None:
        for bucket in Bucket:
            self._make_directories(self._bucket_dir(bucket), self.root.parent)

    def put(
        self, bucket: Bucket, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        path = self._path(bucket, key)

        def write() -> None:
            self._make_directories(path.parent, self._bucket_dir(bucket))
            self._write(path, data)

        # A concurrent delete may remove the (then empty) directory between the two; make it again.
        retrying(attempts=3, retry_on=lambda error: isinstance(error, FileNotFoundError))(write)
        return self._info(key, path, etag=hashlib.md5(data, usedforsecurity=False).hexdigest())

    def _write(self, path: Path, data: bytes) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), self.file_mode)  # mkstemp makes 0600 files
                handle.write(data)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def _make_directories(self, directory: Path, top: Path) -> None:
        """Create `directory` and any missing parents below `top` with the directory mode."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir() and current != top and current != current.parent:
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            os.chmod(path, self.directory_mode)  # mkdir's mode is masked by the umask

    def get(self, bucket: Bucket, key: str) -> bytes:
        path = self._path(bucket, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"{bucket.value}/{key}") from None

    def open(self, bucket: Bucket, key: str) -> ObjectStream:
        path = self._path(bucket, key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"{bucket.value}/{key}") from None
        return ObjectStream(info=self._info(key, path), body=handle)

    def head(self, bucket: Bucket, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        if not path.is_file():
            return None
        return self._info(key, path)

    def list(self, bucket: Bucket, prefix: str) -> Iterator[ObjectInfo]:
        base = self._bucket_dir(bucket)
        # Walk only the directory the prefix names, then filter on the full key, as S3 does.
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            # Descend only where keys under the prefix can be: "series/a" needs series/a0 .. series/af.
            here = Path(dirpath).relative_to(base).as_posix()
            dirnames[:] = sorted(d for d in dirnames if _may_hold(f"{here}/{d}/", prefix))
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                path = Path(dirpath, name)
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield self._info(key, path)

    def delete(self, bucket: Bucket, keys: Iterable[str]) -> int:
        base = self._bucket_dir(bucket)
        count = 0
        for key in keys:
            path = self._path(bucket, key)
            path.unlink(missing_ok=True)
            count += 1
            _remove_empty_parents(path.parent, base)
        return count

    def url(self, bucket: Bucket, key: str) -> str:
        if self.cdn_base_url:
            return f"{self.cdn_base_url}/{key}"
        return self._path(bucket, key).as_uri()

    def check(self) -> None:
        for bucket in Bucket:
            directory = self._bucket_dir(bucket)
            if not directory.is_dir() or not os.access(directory, os.W_OK):
                raise StorageError(f"local storage directory {directory} is missing or not writable")

    def _bucket_dir(self, bucket: Bucket) -> Path:
        return self.root / self.bucket_names[bucket]

    def _path(self, bucket: Bucket, key: str) -> Path:
        base = self._bucket_dir(bucket)
        path = (base / key).resolve()
        if not key or key.startswith("/") or not path.is_relative_to(base):
            raise StorageError(f"key {key!r} is outside the bucket")
        return path

    @staticmethod
    def _info(key: str, path: Path, etag: str | None = None) -> ObjectInfo:
        stat = path.stat()
        extension = path.suffix.lstrip(".")
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            etag=etag,
            content_type=MIME_BY_EXTENSION.get(extension, "application/octet-stream"),
        )


def _may_hold(directory: str, prefix: str) -> bool:
    """Whether keys under `directory` (ending in "/") can start with `prefix`."""
    return directory.startswith(prefix) or prefix.startswith(directory)


def _remove_empty_parents(directory: Path, base: Path) -> None:
    """Remove `directory` and its parents below `base` while they are empty."""
    while directory != base and directory.is_relative_to(base):
        try:
            directory.rmdir()
        except OSError:  # not empty (or already gone because another delete got there first)
            if directory.exists():
                return
        directory = directory.parent
