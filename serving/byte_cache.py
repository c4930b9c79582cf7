"""Small rendition bytes kept in memory, so most image responses need no storage GET.

The cache is content-addressed: an entry's key holds the catalog checksum (sha256) of its bytes, and
bytes are admitted only after their sha256 is checked against that checksum. A rendition replaced
under the same storage key has a new checksum in the catalog, so it can never be answered with the old
bytes, and bytes read from storage that do not match the catalog (an object re-rendered but not yet
recorded) are sent once, uncached, and never kept.

Memory is bounded by SERVING_BYTE_CACHE_MB per process (least recently used entries go first);
objects larger than `max_object_bytes` are not kept and keep streaming from storage.
"""

from __future__ import annotations

import hashlib
import threading

from cachetools import LRUCache

from serving.events import NO_RECORDER, Recorder
from serving.queries import RenditionRecord

MB = 1024 * 1024
# Large enough for every size but the biggest originals; small enough that one object never takes
# more than a sliver of the budget.
MAX_OBJECT_BYTES = 2 * MB


class RenditionByteCache:
    def __init__(
        self, budget_bytes: int, max_object_bytes: int = MAX_OBJECT_BYTES, recorder: Recorder = NO_RECORDER
    ) -> None:
        self.recorder = recorder
        self.budget_bytes = budget_bytes
        self.max_object_bytes = min(max_object_bytes, budget_bytes)
        self._entries: LRUCache[tuple[str, str, str], bytes] = LRUCache(
            maxsize=max(budget_bytes, 1), getsizeof=len
        )
        self._lock = threading.Lock()

    @classmethod
    def with_megabytes(cls, megabytes: float, recorder: Recorder = NO_RECORDER) -> RenditionByteCache:
        return cls(int(megabytes * MB), recorder=recorder)

    def holds_size(self, size: int) -> bool:
        """Whether an object of this many bytes is worth reading whole and keeping."""
        return 0 < size <= self.max_object_bytes

    def get(self, rendition: RenditionRecord) -> bytes | None:
        if not self.holds_size(rendition.bytes):
            return None
        with self._lock:
            data = self._entries.get(_key(rendition))
        self.recorder.byte_cache(data is not None)
        return data

    def offer(self, rendition: RenditionRecord, data: bytes) -> bool:
        """Keep `data` if it is exactly the bytes the catalog's checksum names; False if it is not."""
        if hashlib.sha256(data).hexdigest() != rendition.checksum:
            return False
        if self.holds_size(len(data)):
            with self._lock:
                self._entries[_key(rendition)] = data
                used = int(self._entries.currsize)
            self.recorder.byte_cache_size(used)
        return True

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return int(self._entries.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _key(rendition: RenditionRecord) -> tuple[str, str, str]:
    return (rendition.bucket.value, rendition.storage_key, rendition.checksum)
