"""A cap on simultaneous downloads per host, shared by every thread using one fetcher.

A thread pool sized for throughput could otherwise open dozens of connections to one origin and
get the whole pipeline rate-limited or banned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HostSlots:
    """One bounded semaphore per host name.

    Keys are host names only (never ports or paths) and only hosts that passed the allow-list reach
    here, so the table stays as small as the allow-list.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def hold(self, host: str) -> Iterator[None]:
        """Block until `host` has a free slot, and keep it for the duration of the block."""
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.limit)
        with slot:
            yield
