"""Run a function over a stream of tasks on a thread pool with a bounded number in flight.

Pillow, httpx and boto3 release the GIL while they decode, encode, resize and wait on sockets, so one
pool of threads keeps both cores busy and overlaps downloads and uploads with image work, while the
bound keeps memory flat however large the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
