"""Counts added on the event loop as plain numbers and handed to prometheus-client's shared values in
batches.

In multiprocess mode every `inc()` takes a lock, checks the pid and writes the memory-mapped file; a
request that counts itself, its latency bucket, its bytes and two cache lookups paid that six times.
Here a request adds to a dict, and the sums go to the files FLUSH_SECONDS later (one timer per batch),
when the worker shuts down, and before the worker answering a scrape reads the files. So a scrape
sees another worker's last FLUSH_SECONDS of requests a little later, never lost or doubled.

Everything that counts runs on the worker's event loop (the middleware, the lookup cache, the byte
cache in `serving.delivery`); a call from outside a running loop is written at once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

FLUSH_SECONDS = 0.5


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Tally:
    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._pending: dict[Incrementable, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, value: Incrementable, amount: float = 1.0) -> None:
        pending = self._pending
        pending[value] = pending.get(value, 0.0) + amount
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.flush_seconds, self.flush)

    def flush(self) -> None:
        """Write what was counted since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        for value, amount in pending.items():
            value.inc(amount)
