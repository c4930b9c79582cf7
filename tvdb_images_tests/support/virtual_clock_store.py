"""An object store for the cleanup property tests: real objects, stamped with a model's virtual clock.

Cleanup decides by an object's age, so the tests move time by hand rather than waiting for it. The
store also lets the model run the sync steps hypothesis chose to inject into a cleanup in progress:
"after listing" (both buckets listed, the catalog not yet read) and "before deleting" (each candidate
re-checked right before it goes), and vet every key the moment before it is really deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from tvdb_images.storage import Bucket, ObjectInfo, ObjectStore

START = datetime(2026, 1, 1, tzinfo=UTC)
"""The virtual time objects the store did not write (or wrote before the model began) carry."""


class CleanupModel(Protocol):
    now: datetime

    def run_injected(self, point: str) -> None: ...

    def check_delete(self, bucket: Bucket, key: str) -> None: ...


class VirtualClockStore:
    """`inner`, with each object's last-modified time the model's clock when it was written."""

    def __init__(self, inner: ObjectStore, model: CleanupModel) -> None:
        self.inner = inner
        self.model = model
        self.written: dict[tuple[Bucket, str], datetime] = {}
        self.lists_in_cleanup = 0

    def start_cleanup(self) -> None:
        """Count lists from here: the steps "after listing" run once both buckets are listed."""
        self.lists_in_cleanup = 0

    def put(self, bucket: Bucket, key: str, data: bytes, **kwargs: Any) -> ObjectInfo:
        info = self.inner.put(bucket, key, data, **kwargs)
        self.written[(bucket, key)] = self.model.now
        return replace(info, last_modified=self.model.now)

    def list(self, bucket: Bucket, prefix: str) -> Iterator[ObjectInfo]:
        listed = [
            replace(obj, last_modified=self.written.get((bucket, obj.key), START))
            for obj in self.inner.list(bucket, prefix)
        ]
        yield from listed
        # Cleanup lists both buckets, then reads the catalog: inject between the two.
        self.lists_in_cleanup += 1
        if self.lists_in_cleanup == len(Bucket):
            self.model.run_injected("after listing")

    def head(self, bucket: Bucket, key: str) -> ObjectInfo | None:
        # Cleanup re-checks each candidate (fresh references, then HEAD) right before deleting it.
        self.model.run_injected("before deleting")
        info = self.inner.head(bucket, key)
        if info is None:
            return None
        return replace(info, last_modified=self.written.get((bucket, key), START))

    def delete(self, bucket: Bucket, keys: Iterable[str]) -> int:
        keys = list(keys)
        self.model.run_injected("before deleting")
        for key in keys:
            self.model.check_delete(bucket, key)
        for key in keys:
            self.written.pop((bucket, key), None)
        return self.inner.delete(bucket, keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
