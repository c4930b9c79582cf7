"""The one way tests and benchmarks wait for background work: poll a condition against a deadline.

Waiting a fixed time instead either wastes it or, on a loaded machine, is too short; a condition that
is polled ends as soon as the work is done and names what never happened when it is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy, and return that.

    Raises TimeoutError with `message` (called at that moment when it is a function, so it can show
    the latest state or a log) once `timeout` seconds have passed. Exceptions of the `ignore` types
    count as "not yet"; any other exception ends the wait at once (a process that died, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ignore:
            value = None
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise TimeoutError(f"{text} (waited {timeout:.0f}s)")
        time.sleep(min(interval, remaining))
