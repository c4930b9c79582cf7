"""The one exception the fetcher raises, with a stable cause code per kind of failure.

Callers record `cause` in the catalog and decide from `retryable` / `gone` whether a later run should
try the URL again, so the codes below are part of the package's interface: add new ones, never rename.
"""

from __future__ import annotations

BAD_URL = "bad_url"
FORBIDDEN_HOST = "forbidden_host"
PRIVATE_ADDRESS = "private_address"
GONE = "gone"
HTTP_ERROR = "http_error"
SERVER_ERROR = "server_error"
RATE_LIMITED = "rate_limited"
TIMEOUT = "timeout"
TOO_LARGE = "too_large"
LENGTH_MISMATCH = "length_mismatch"
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
CONNECTION_ERROR = "connection_error"

CAUSES: frozenset[str] = frozenset(
    {
        BAD_URL,
        FORBIDDEN_HOST,
        PRIVATE_ADDRESS,
        GONE,
        HTTP_ERROR,
        SERVER_ERROR,
        RATE_LIMITED,
        TIMEOUT,
        TOO_LARGE,
        LENGTH_MISMATCH,
        REDIRECT_LOOP,
        TOO_MANY_REDIRECTS,
        CONNECTION_ERROR,
    }
)

# Failures a later run may reasonably retry: the server or the network may behave next time.
RETRYABLE_CAUSES: frozenset[str] = frozenset(
    {SERVER_ERROR, RATE_LIMITED, TIMEOUT, CONNECTION_ERROR, LENGTH_MISMATCH}
)


class FetchError(Exception):
    """A download that did not produce an image's bytes.

    `retryable` means a later run may try again; `gone` marks a 404/410, which no run should retry.
    `status` is the last HTTP status seen, if any; `attempts` how many requests this fetch made;
    `retry_after` the wait in seconds a 429/503 asked for, which a scheduler may honour.
    """

    def __init__(
        self,
        cause: str,
        detail: str,
        *,
        retryable: bool,
        gone: bool = False,
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail
        self.retryable = retryable
        self.gone = gone
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments defeat Exception's default pickling; process pools need it.
        state = (
            self.cause,
            self.detail,
            self.retryable,
            self.gone,
            self.status,
            self.attempts,
            self.retry_after,
        )
        return (_rebuild, state)

    def __repr__(self) -> str:
        return (
            f"FetchError({self.cause!r}, {self.detail!r}, retryable={self.retryable}, status={self.status})"
        )


def _rebuild(
    cause: str,
    detail: str,
    retryable: bool,
    gone: bool,
    status: int | None,
    attempts: int,
    retry_after: float | None,
) -> FetchError:
    return FetchError(
        cause,
        detail,
        retryable=retryable,
        gone=gone,
        status=status,
        attempts=attempts,
        retry_after=retry_after,
    )


def error(
    cause: str, detail: str, *, status: int | None = None, retry_after: float | None = None
) -> FetchError:
    """A FetchError whose retryable/gone flags follow from its cause, so they never disagree."""
    return FetchError(
        cause,
        detail,
        retryable=cause in RETRYABLE_CAUSES,
        gone=cause == GONE,
        status=status,
        retry_after=retry_after,
    )
