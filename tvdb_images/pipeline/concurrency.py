"""Run a function over a stream of tasks on a thread pool with a bounded number in flight.

Pillow, httpx and boto3 release the GIL while they decode, encode, resize and wait on sockets, so one
pool of threads keeps both cores busy and overlaps downloads and uploads with image work, while the
bound keeps memory flat however large the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    function: Callable[[T], R], tasks: Iterable[T], *, workers: int, max_in_flight: int | None = None
) -> Iterator[tuple[T, R]]:
    """Yield (task, result) as each completes; at most `max_in_flight` tasks are held at once."""
    limit = max(1, max_in_flight or workers * 2)
    iterator = iter(tasks)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tvdb-images") as pool:
        in_flight: dict[Future[R], T] = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < limit:
                try:
                    task = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                in_flight[pool.submit(function, task)] = task
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                task = in_flight.pop(future)
                yield task, future.result()


# Rendering a source this large holds ~120 MB of pixels and encoder buffers at its peak (a 3840x2160
# JPEG: the full decode, its reduced decodes, libwebp's working memory for the 8-megapixel original).
LARGE_SOURCE_PIXELS = 2 * 1920 * 1080


class RenderSlots:
    """At most `workers` renders at once, and of those at most one of a source over `large_pixels`.

    Threads beyond `workers` only read sources and upload meanwhile. Two 4K renders side by side would
    double a run process's peak memory for a rare gain: while one renders, the other thread takes the
    many smaller sources instead.
    """

    def __init__(self, workers: int, *, large_pixels: int = LARGE_SOURCE_PIXELS) -> None:
        self.large_pixels = large_pixels
        self._any = threading.BoundedSemaphore(max(1, workers))
        self._large = threading.BoundedSemaphore(1)

    @contextmanager
    def hold(self, pixels: int | None):
        """A slot for rendering a source of `pixels` (None when unknown: treated as small)."""
        large = pixels is not None and pixels > self.large_pixels
        # The large slot is taken first, so a thread waiting for it holds no render slot.
        with self._large if large else nullcontext(), self._any:
            yield
