"""The one small interface every object store implements, so the pipeline and the API need not care
whether images live on the local disk (embedded default) or in S3/MinIO/SeaweedFS (production)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

# A rendition's key is stable per artwork, but its bytes are replaced when TVDB replaces the source or
# an operator re-renders (IMAGE_QUALITY, IMAGE_FORMAT). So objects are long-lived but not `immutable`:
# a week, after which clients and CDNs revalidate (S3 answers with the object's ETag); purge a CDN
# after a re-render to see the change sooner.
RENDITION_CACHE_CONTROL = "public, max-age=604800"


class Bucket(StrEnum):
    """The two logical buckets; each backend maps them to real bucket names or directories."""

    ORIGINALS = "originals"
    THUMBNAILS = "thumbnails"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str | None = None
    content_type: str | None = None
    cache_control: str | None = None


class StorageError(RuntimeError):
    """The store could not complete an operation (unreachable, refused, ...); safe to retry later."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class ObjectBody(Protocol):
    """What an ObjectStream reads its bytes from: a file, a botocore stream, a urllib3 response."""

    def read(self, amount: int | None = None, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class ObjectStream:
    """An object's bytes as a stream, with what a server needs to send headers before the body."""

    info: ObjectInfo
    body: ObjectBody

    def iter_chunks(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        try:
            while chunk := self.body.read(chunk_size):
                yield chunk
        finally:
            self.body.close()

    def close(self) -> None:
        self.body.close()


@runtime_checkable
class ObjectStore(Protocol):
    """Object storage as the project uses it: whole-object puts (atomic), reads, listing, deletes."""

    backend: str
    bucket_names: dict[Bucket, str]  # the real bucket (or directory) name of each logical bucket

    def ensure_buckets(self) -> None:
        """Create the buckets (or directories) if they do not exist yet."""

    def put(
        self, bucket: Bucket, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store `data` under `key` atomically: readers see the old object or the whole new one."""

    def get(self, bucket: Bucket, key: str) -> bytes: ...

    def open(self, bucket: Bucket, key: str) -> ObjectStream:
        """Open an object for streaming; raises ObjectNotFound."""

    def head(self, bucket: Bucket, key: str) -> ObjectInfo | None: ...

    def list(self, bucket: Bucket, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, bucket: Bucket, keys: Iterable[str]) -> int:
        """Delete keys (missing ones are fine); returns how many were asked to be deleted."""

    def url(self, bucket: Bucket, key: str) -> str:
        """Where a client can fetch the object (the CDN when configured)."""

    def check(self) -> None:
        """Raise StorageError if the store cannot be reached; used by readiness probes."""
