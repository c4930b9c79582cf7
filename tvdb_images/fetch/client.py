"""Downloads one image's bytes safely: vetted URLs, capped size, bounded time, polite retries.

One ImageFetcher (one httpx.Client, one connection pool) serves a whole thread pool. Each fetch is
a series of attempts; an attempt follows redirects by hand so every hop is vetted, and streams the
body so a response over the cap is abandoned as soon as it shows itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx
from tenacity import Retrying

from tvdb_images.retrying import retrying

from .conditional import HeadInfo, SourceValidators
from .errors import (
    BAD_URL,
    CONNECTION_ERROR,
    GONE,
    HTTP_ERROR,
    LENGTH_MISMATCH,
    RATE_LIMITED,
    REDIRECT_LOOP,
    SERVER_ERROR,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
    FetchError,
    error,
)
from .network import GuardedTransport, deadline
from .policy import FetchPolicy
from .retry import backoff_delay, parse_retry_after
from .slots import HostSlots
from .urls import Target, check_url

log = logging.getLogger(__name__)

OK_STATUSES = frozenset({200, 203})
# Unread bodies up to this size are read and dropped to keep the connection; larger ones close it.
DRAIN_LIMIT = 64 * 1024
# Failures worth another attempt within the same fetch: the next request may well succeed.
RETRY_IN_RUN = frozenset({SERVER_ERROR, RATE_LIMITED, TIMEOUT, CONNECTION_ERROR, LENGTH_MISMATCH})


@dataclass(frozen=True)
class FetchedImage:
    """The bytes of one download.

    `content_type` is the server's claim (media type only), not verified; `elapsed` is the wall time
    of the whole fetch, waits and retries included; `attempts` counts request chains made.
    `validators` are the origin's ETag / Last-Modified for these bytes. A conditional fetch the
    origin answered with 304 has `not_modified` set and no data.
    """

    url: str
    final_url: str
    data: bytes
    content_type: str | None
    status: int
    elapsed: float
    attempts: int
    validators: SourceValidators = field(default_factory=SourceValidators)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _RefuseCookies(DefaultCookiePolicy):
    """Image downloads need no cookies, and a long-lived shared client must not collect them."""

    def set_ok(self, cookie: object, request: object) -> bool:
        return False

    def return_ok(self, cookie: object, request: object) -> bool:
        return False


class ImageFetcher:
    """Fetches image URLs under a FetchPolicy; `fetch` is safe to call from many threads at once.

    `transport` replaces the guarded transport (tests wrap or mock it); whatever is passed decides
    for itself which addresses it connects to, so production code leaves it None. `sleep` is what
    backoff waits with.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._slots = HostSlots(policy.per_host_concurrency)
        if transport is None:
            # Enough connections for every allowed host at its full concurrency, so threads queue
            # on the per-host slots, never on the pool.
            size = policy.per_host_concurrency * max(1, len(policy.allow_list.hosts))
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            transport = GuardedTransport(policy.allow_list, limits=limits)
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(policy=_RefuseCookies()),
            timeout=httpx.Timeout(
                connect=policy.connect_timeout,
                read=policy.read_timeout,
                write=policy.read_timeout,
                pool=policy.total_timeout,
            ),
            headers={
                "User-Agent": policy.user_agent,
                # The original file is wanted: naming image/webp or image/avif here would let an
                # image CDN substitute a re-encoded copy.
                "Accept": "*/*",
                # Images are compressed already; unencoded transfer keeps Content-Length about the
                # image itself. A server that compresses anyway is decoded, and the cap applies to
                # the decoded bytes.
                "Accept-Encoding": "identity",
            },
        )

    def fetch(self, url: str, *, validators: SourceValidators | None = None) -> FetchedImage:
        """Download `url`, retrying transient failures; raise FetchError when no bytes can be had.

        With `validators`, the request is conditional: a 304 returns a FetchedImage with
        `not_modified` set and no data, at the cost of one request and no body.
        """
        started = time.monotonic()
        headers = validators.request_headers() if validators else {}
        response, data, attempts = self._with_retries(url, "GET", headers)
        return FetchedImage(
            url=url,
            final_url=str(response.url),
            data=data,
            content_type=_media_type(response),
            status=response.status_code,
            elapsed=time.monotonic() - started,
            attempts=attempts,
            validators=SourceValidators.of(response),
        )

    def head(self, url: str) -> HeadInfo:
        """Ask for `url`'s headers only (same guard, redirects and retries as a download)."""
        response, _data, attempts = self._with_retries(url, "HEAD", {})
        return HeadInfo(
            url=url,
            status=response.status_code,
            content_length=_content_length(response),
            content_type=_media_type(response),
            validators=SourceValidators.of(response),
            attempts=attempts,
        )

    def _with_retries(
        self, url: str, method: str, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes, int]:
        target = check_url(url, self.policy.allow_list)
        for attempt in self._retrying(url):
            with attempt:
                number = attempt.retry_state.attempt_number
                try:
                    response, data = self._attempt(target, method=method, headers=headers)
                except FetchError as exc:
                    exc.attempts = number
                    raise
                return response, data, number
        raise AssertionError("unreachable: tenacity re-raises the last error when it gives up")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _retrying(self, url: str) -> Retrying:
        """Attempts of one fetch: up to `max_retries` more after a failure worth another try."""

        def log_retry(attempt: int, exc: BaseException, delay: float) -> None:
            log.debug("retrying %s in %.2fs after %s (attempt %d)", url, delay, exc, attempt)

        return retrying(
            attempts=self.policy.max_retries + 1,
            retry_on=lambda exc: isinstance(exc, FetchError) and exc.cause in RETRY_IN_RUN,
            wait=self._delay,
            on_retry=log_retry,
            sleep=self._sleep,
        )

    def _delay(self, attempts: int, exc: BaseException) -> float:
        """Seconds before the next attempt: the server's Retry-After when it gives one (giving up at
        once when it asks for more than `backoff_max`), else backoff."""
        assert isinstance(exc, FetchError)
        if exc.retry_after is None:
            return backoff_delay(attempts, self.policy.backoff_base, self.policy.backoff_max)
        if exc.retry_after > self.policy.backoff_max:
            give_up = error(
                RATE_LIMITED,
                f"server asks to wait {exc.retry_after:.0f}s, more than {self.policy.backoff_max:g}s",
                status=exc.status,
                retry_after=exc.retry_after,
            )
            give_up.attempts = attempts
            raise give_up from exc
        return exc.retry_after

    # -- one attempt ---------------------------------------------------------------------------------

    def _attempt(
        self, target: Target, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, bytes]:
        """One request chain from the original URL to a final response, within one deadline."""
        request = self._client.build_request(method, target.url, headers=headers)
        conditional = bool(headers) and any(name.lower().startswith("if-") for name in headers or {})
        seen = {_without_fragment(target.url)}
        ends_at: float | None = None
        for _hop in range(self.policy.max_redirects + 1):
            with self._slots.hold(target.host):
                # The clock starts once a slot is held: waiting for one's turn is not the server's fault.
                ends_at = ends_at or time.monotonic() + self.policy.total_timeout
                with deadline(ends_at):
                    response = self._send(request)
                    try:
                        redirect = response.next_request
                        if redirect is None:
                            if (conditional and response.status_code == 304) or method == "HEAD":
                                # No body follows either (HTTP says so): reading the empty rest keeps
                                # the connection for the next request.
                                with _translated(response.url, body=True):
                                    response.read()
                                if method == "HEAD":
                                    _check_status(response)
                                return response, b""
                            return response, self._body(response, ends_at)
                    finally:
                        _release(response)
            request = redirect
            location = _without_fragment(request.url)
            if location in seen:
                raise error(
                    REDIRECT_LOOP, f"{response.url} redirects back to {location}", status=response.status_code
                )
            seen.add(location)
            target = check_url(request.url, self.policy.allow_list)
        raise error(
            TOO_MANY_REDIRECTS,
            f"more than {self.policy.max_redirects} redirects",
            status=response.status_code,
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        with _translated(request.url, body=False):
            return self._client.send(request, stream=True)

    def _body(self, response: httpx.Response, ends_at: float) -> bytes:
        """The response body if the status says it is the image, else the matching FetchError."""
        _check_status(response)
        declared = _content_length(response)
        cap = self.policy.max_bytes
        if declared is not None and declared > cap:
            raise error(
                TOO_LARGE, f"Content-Length {declared} exceeds {cap} bytes", status=response.status_code
            )
        chunks: list[bytes] = []
        size = 0
        with _translated(response.url, body=True, declared=declared):
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise error(TOO_LARGE, f"body exceeds {cap} bytes", status=response.status_code)
                chunks.append(chunk)
                if time.monotonic() > ends_at:
                    raise error(TIMEOUT, f"not complete within {self.policy.total_timeout:g}s")
        if declared is not None and response.num_bytes_downloaded != declared:
            raise error(
                LENGTH_MISMATCH,
                f"Content-Length {declared} but {response.num_bytes_downloaded} bytes received",
                status=response.status_code,
            )
        return b"".join(chunks)


def _release(response: httpx.Response) -> None:
    """Close the response; first read a short unread body (redirect, 404) so its connection is reused."""
    if not response.is_stream_consumed:
        length = _content_length(response)
        if length is not None and length <= DRAIN_LIMIT:
            with contextlib.suppress(httpx.HTTPError):
                response.read()
    response.close()


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in OK_STATUSES:
        return
    if status in (404, 410):
        raise error(GONE, f"HTTP {status}", status=status)
    if status in (429, 503):
        wait = parse_retry_after(response.headers.get("Retry-After"))
        raise error(RATE_LIMITED, f"HTTP {status}", status=status, retry_after=wait)
    if status >= 500:
        raise error(SERVER_ERROR, f"HTTP {status}", status=status)
    raise error(HTTP_ERROR, f"unexpected HTTP {status}", status=status)


@contextmanager
def _translated(url: httpx.URL, *, body: bool, declared: int | None = None) -> Iterator[None]:
    """Turn httpx's exceptions into FetchErrors with the cause codes callers record."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise error(TIMEOUT, f"{type(exc).__name__} for {url}: {exc}") from exc
    except httpx.RemoteProtocolError as exc:
        if body and declared is not None:
            # h11 reports a body that ends before its Content-Length as a protocol error.
            raise error(LENGTH_MISMATCH, f"body shorter than Content-Length {declared}: {exc}") from exc
        if not body and "location header" in str(exc).lower():
            raise error(BAD_URL, f"redirect from {url} has an invalid Location: {exc}") from exc
        raise error(CONNECTION_ERROR, f"protocol error from {url}: {exc}") from exc
    except httpx.DecodingError as exc:
        raise error(HTTP_ERROR, f"undecodable Content-Encoding from {url}: {exc}") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise error(BAD_URL, f"{url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise error(CONNECTION_ERROR, f"{type(exc).__name__} for {url}: {exc}") from exc


def _content_length(response: httpx.Response) -> int | None:
    """The declared length of the body as sent (before any Content-Encoding is undone), or None."""
    value = response.headers.get("Content-Length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("Content-Type")
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _without_fragment(url: httpx.URL) -> str:
    return str(url.copy_with(fragment=None))
