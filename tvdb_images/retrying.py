"""Trying an operation again: the one shape every retry in the project takes, on tenacity.

Four operations retry. An image fetch (`fetch.client.ImageFetcher`): transient HTTP failures, waits
with equal jitter, or the server's own Retry-After. A batch of catalog writes
(`pipeline.batching.CatalogWriter`): a restarting PostgreSQL, waits doubling from half a second. A
serving lookup (`serving.queries.CatalogReader`): a pooled connection the server dropped, tried again
at once on a fresh one. A local-store write (`storage.local.LocalObjectStore.put`): a directory a
concurrent delete removed, made again at once. Each says which errors deserve another attempt, how
many attempts there are in all and how long to wait before each; tenacity keeps the count, sleeps,
and re-raises the last error unchanged when it gives up. (Object GETs on the read path retry inside urllib3,
`urllib3.Retry`, as boto3 does for everything else.)

tenacity rather than stamina (which is built on it): the fetch's wait is either the server's
Retry-After or its own backoff, and its tests count the waits through an injected `sleep`; tenacity
takes any wait function and a `sleep`, stamina's waits are its fixed exponential-plus-jitter formula
and its tests switch waiting off process-wide.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tenacity

Wait = Callable[[int, BaseException], float]
"""Seconds to wait after failed attempt number `attempt` (1-based) ended with `error`. It may raise
instead, to give up early with another error."""

OnRetry = Callable[[int, BaseException, float], None]
"""Told of each failed attempt that will be tried again: its number, its error, the wait before it."""


def retrying(
    *,
    attempts: int,
    retry_on: Callable[[BaseException], bool],
    wait: Wait | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """At most `attempts` attempts in all; another only after an error `retry_on` accepts.

    Call it with the function and its arguments, or iterate over it (`for attempt in r: with
    attempt: ...`) when the attempt needs its own number. One instance may be shared by threads:
    tenacity keeps the state of each call per thread.
    """

    def wait_for(state: tenacity.RetryCallState) -> float:
        return wait(state.attempt_number, _error(state)) if wait is not None else 0.0

    def before_sleep(state: tenacity.RetryCallState) -> None:
        assert on_retry is not None
        on_retry(state.attempt_number, _error(state), state.upcoming_sleep)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        retry=tenacity.retry_if_exception(retry_on),
        wait=wait_for,
        before_sleep=before_sleep if on_retry is not None else None,
        sleep=sleep,
        reraise=True,
    )


def doubling(first: float) -> Wait:
    """Waits of `first`, then twice as long after each further failure."""
    return lambda attempt, _error: first * 2 ** (attempt - 1)


def _error(state: tenacity.RetryCallState) -> BaseException:
    error = state.outcome.exception() if state.outcome is not None else None
    assert error is not None, "tenacity retries only after an error here"
    return error
