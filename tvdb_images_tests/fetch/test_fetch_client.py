"""ImageFetcher against real loopback HTTP servers: bytes, size caps, deadlines, statuses, retries."""

from __future__ import annotations

import gzip
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tvdb_images.fetch import FetchError, FetchPolicy, GuardedTransport, ImageFetcher
from tvdb_images_tests.support.origins import (
    LoopbackOrigin,
    OriginHandler,
    endless,
    hang,
    respond,
    sequence,
    short_body,
    trickle,
)

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)


class Sleeps(list[float]):
    """A stand-in for time.sleep that records how long backoff asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[LoopbackOrigin]:
    (tmp_path / "poster.png").write_bytes(PNG)
    with LoopbackOrigin(tmp_path) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_fetcher(origin: LoopbackOrigin, sleeps: Sleeps | None = None, **limits: object) -> ImageFetcher:
    policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}), **limits)
    return ImageFetcher(policy, sleep=sleeps if sleeps is not None else Sleeps())


def fetch_error(fetcher: ImageFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    return caught.value


# -- success ---------------------------------------------------------------------------------------


def test_fetches_the_exact_bytes(origin: LoopbackOrigin) -> None:
    with make_fetcher(origin) as fetcher:
        image = fetcher.fetch(origin.url("/poster.png"))
    assert image.data == PNG
    assert image.content_type == "image/png"
    assert (image.status, image.attempts) == (200, 1)
    assert image.url == image.final_url == origin.url("/poster.png")
    assert 0 < image.elapsed < 5


@pytest.mark.parametrize(
    ("claimed", "reported"),
    [("text/html; charset=utf-8", "text/html"), ("IMAGE/JPEG", "image/jpeg"), (None, None)],
)
def test_content_type_is_reported_not_trusted(
    origin: LoopbackOrigin, claimed: str | None, reported: str | None
) -> None:
    origin.route("/img", respond(200, PNG, {"Content-Type": claimed} if claimed else {}))
    with make_fetcher(origin) as fetcher:
        image = fetcher.fetch(origin.url("/img"))
    assert image.data == PNG
    assert image.content_type == reported


def test_sends_identifying_headers(origin: LoopbackOrigin) -> None:
    seen: dict[str, str] = {}

    def record(handler: OriginHandler) -> None:
        seen.update({k.lower(): v for k, v in handler.headers.items()})
        handler.send_body(200, b"ok")

    origin.route("/h", record)
    with make_fetcher(origin, user_agent="tvdb-images-test/1") as fetcher:
        fetcher.fetch(origin.url("/h"))
    assert seen["user-agent"] == "tvdb-images-test/1"
    assert seen["accept-encoding"] == "identity"
    assert seen["accept"] == "*/*"
    assert "cookie" not in seen


def test_connections_are_reused(origin: LoopbackOrigin) -> None:
    peers: set[tuple[str, int]] = set()

    def record(handler: OriginHandler) -> None:
        peers.add(handler.client_address)
        handler.send_body(404 if handler.route_path == "/missing" else 200, b"ok")

    origin.route("/k", record)
    origin.route("/missing", record)
    with make_fetcher(origin) as fetcher:
        for _ in range(3):
            fetcher.fetch(origin.url("/k"))
            with pytest.raises(FetchError):
                fetcher.fetch(origin.url("/missing"))  # a short error body is read, not thrown away
    assert len(peers) == 1


# -- size -------------------------------------------------------------------------------------------


def test_content_length_over_the_cap_is_refused_before_reading(origin: LoopbackOrigin) -> None:
    # Promises 100 MB and then sends a byte every 10 s: reading any of it would take forever.
    origin.route("/huge", trickle(10.0, declared=100_000_000))
    with make_fetcher(origin, max_bytes=1_000_000, max_retries=0) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, origin.url("/huge"))
    assert err.cause == "too_large" and not err.retryable
    assert "Content-Length" in err.detail
    assert time.monotonic() - started < 2


class CountingTransport(httpx.BaseTransport):
    """Counts the body bytes the fetcher actually pulled through the transport."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.body_bytes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountingStream(self, response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, owner: CountingTransport, inner: httpx.SyncByteStream) -> None:
        self.owner, self.inner = owner, inner

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.owner.body_bytes += len(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


def test_body_over_the_cap_without_length_stops_early(origin: LoopbackOrigin) -> None:
    cap = 256 * 1024
    offered = 512 * 1024 * 1024
    origin.route("/endless", endless(limit=offered))
    policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}), max_bytes=cap, max_retries=0)
    counting = CountingTransport(GuardedTransport(policy.allow_list))
    with ImageFetcher(policy, transport=counting) as fetcher:
        err = fetch_error(fetcher, origin.url("/endless"))
    assert err.cause == "too_large" and not err.retryable
    assert cap < counting.body_bytes <= cap + 65536  # stopped at the first chunk past the cap
    assert origin.wait_idle(), "the server kept sending after the client hung up"
    assert origin.sent_bytes["/endless"] < 64 * 1024 * 1024  # far from the 512 MB it was ready to send


def test_compressed_body_is_capped_after_decoding(origin: LoopbackOrigin) -> None:
    bomb = gzip.compress(b"\0" * 8_000_000)  # about 8 KB on the wire
    origin.route("/bomb", respond(200, bomb, {"Content-Encoding": "gzip"}))
    with make_fetcher(origin, max_bytes=1_000_000, max_retries=0) as fetcher:
        err = fetch_error(fetcher, origin.url("/bomb"))
    assert err.cause == "too_large"


def test_body_shorter_than_content_length(origin: LoopbackOrigin) -> None:
    origin.route("/short", short_body(declared=10_000, body=PNG[:1000]))
    with make_fetcher(origin, max_retries=0) as fetcher:
        err = fetch_error(fetcher, origin.url("/short"))
    assert err.cause == "length_mismatch" and err.retryable
    assert origin.hits("/short") == 1


def test_short_body_is_retried_within_the_fetch(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/short-once", sequence(short_body(10_000, PNG[:10]), respond(200, PNG)))
    with make_fetcher(origin, sleeps, max_retries=2) as fetcher:
        image = fetcher.fetch(origin.url("/short-once"))
    assert image.data == PNG and image.attempts == 2 and len(sleeps) == 1


# -- time -------------------------------------------------------------------------------------------


def test_trickling_body_times_out_at_the_total_deadline(origin: LoopbackOrigin) -> None:
    origin.route("/trickle", trickle(0.2))
    with make_fetcher(origin, total_timeout=1.5, read_timeout=5.0, max_retries=0) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, origin.url("/trickle"))
        took = time.monotonic() - started
    assert err.cause == "timeout" and err.retryable
    assert 1.4 <= took < 2.5


def test_trickling_headers_time_out_at_the_total_deadline(origin: LoopbackOrigin) -> None:
    def slow_headers(handler: OriginHandler) -> None:
        handler.close_connection = True
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * 1000
        for byte in head:
            if handler.origin.stopping.wait(0.1) or not handler.write(bytes([byte])):
                return

    origin.route("/slow-headers", slow_headers)
    with make_fetcher(origin, total_timeout=1.0, read_timeout=5.0, max_retries=0) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, origin.url("/slow-headers"))
        took = time.monotonic() - started
    assert err.cause == "timeout"
    assert 0.9 <= took < 2.0


def test_server_that_never_answers_times_out(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/hang", hang)
    with make_fetcher(origin, sleeps, read_timeout=0.4, max_retries=1) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, origin.url("/hang"))
        took = time.monotonic() - started
    assert err.cause == "timeout" and err.retryable
    assert origin.hits("/hang") == 2 and err.attempts == 2 and len(sleeps) == 1
    assert 0.8 <= took < 2.5


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs to a full accept queue")
def test_connect_timeout(sleeps: Sleeps) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepts: once the queue is full, new connections get no answer
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            time.sleep(0.1)
            hosts = frozenset({f"127.0.0.1:{port}"})
            policy = FetchPolicy(allowed_hosts=hosts, connect_timeout=0.3, max_retries=1)
            with ImageFetcher(policy, sleep=sleeps) as fetcher:
                started = time.monotonic()
                err = fetch_error(fetcher, f"http://127.0.0.1:{port}/a.png")
                took = time.monotonic() - started
        finally:
            for filler in fillers:
                filler.close()
    assert (err.cause, err.retryable, err.attempts) == ("timeout", True, 2)
    assert "ConnectTimeout" in err.detail
    assert 0.6 <= took < 2.0


def test_refused_connection_is_a_retryable_connection_error(sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = FetchPolicy(allowed_hosts=frozenset({f"127.0.0.1:{port}"}), max_retries=2)
    with ImageFetcher(policy, sleep=sleeps) as fetcher:
        err = fetch_error(fetcher, f"http://127.0.0.1:{port}/a.png")
    assert err.cause == "connection_error" and err.retryable
    assert err.attempts == 3 and len(sleeps) == 2


# -- status codes and retries --------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_gone_is_final_and_not_retried(origin: LoopbackOrigin, sleeps: Sleeps, status: int) -> None:
    origin.route("/gone", respond(status, b"nope"))
    with make_fetcher(origin, sleeps, max_retries=3) as fetcher:
        err = fetch_error(fetcher, origin.url("/gone"))
    assert (err.cause, err.gone, err.retryable, err.status) == ("gone", True, False, status)
    assert origin.hits("/gone") == 1 and sleeps == []


def test_missing_file_is_gone(origin: LoopbackOrigin) -> None:
    with make_fetcher(origin) as fetcher:
        err = fetch_error(fetcher, origin.url("/no-such-poster.png"))
    assert err.cause == "gone" and err.gone


@pytest.mark.parametrize("status", [400, 401, 403, 418, 204, 206, 300, 304])
def test_other_statuses_are_permanent_http_errors(origin: LoopbackOrigin, status: int) -> None:
    origin.route("/odd", respond(status))
    with make_fetcher(origin, max_retries=3) as fetcher:
        err = fetch_error(fetcher, origin.url("/odd"))
    assert (err.cause, err.retryable, err.gone, err.status) == ("http_error", False, False, status)
    assert origin.hits("/odd") == 1


def test_server_error_then_success(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/flaky", sequence(respond(500), respond(200, PNG)))
    with make_fetcher(origin, sleeps, max_retries=3, backoff_base=0.5) as fetcher:
        image = fetcher.fetch(origin.url("/flaky"))
    assert image.data == PNG and image.attempts == 2
    assert origin.hits("/flaky") == 2
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_persistent_server_error_gives_up_after_max_retries(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/broken", respond(502))
    with make_fetcher(origin, sleeps, max_retries=3, backoff_base=0.5, backoff_max=30) as fetcher:
        err = fetch_error(fetcher, origin.url("/broken"))
    assert (err.cause, err.retryable, err.status, err.attempts) == ("server_error", True, 502, 4)
    assert origin.hits("/broken") == 4
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        full = 0.5 * 2 ** (attempt - 1)
        assert full / 2 <= slept <= full


def test_backoff_waits_are_capped(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/broken", respond(500))
    with make_fetcher(origin, sleeps, max_retries=6, backoff_base=1.0, backoff_max=2.0) as fetcher:
        fetch_error(fetcher, origin.url("/broken"))
    assert len(sleeps) == 6 and max(sleeps) <= 2.0


def test_503_without_retry_after_ends_rate_limited(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/busy", respond(503))
    with make_fetcher(origin, sleeps, max_retries=2) as fetcher:
        err = fetch_error(fetcher, origin.url("/busy"))
    assert (err.cause, err.retryable, err.attempts) == ("rate_limited", True, 3)


def test_retry_after_is_honoured_in_real_time(origin: LoopbackOrigin) -> None:
    origin.route("/limited", sequence(respond(429, b"", {"Retry-After": "1"}), respond(200, PNG)))
    policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}), max_retries=2, backoff_base=0.01)
    with ImageFetcher(policy) as fetcher:  # the real time.sleep
        started = time.monotonic()
        image = fetcher.fetch(origin.url("/limited"))
        took = time.monotonic() - started
    assert image.data == PNG and image.attempts == 2
    assert 1.0 <= took < 2.0


def test_retry_after_as_http_date(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    from email.utils import formatdate

    when = formatdate(time.time() + 5, usegmt=True)
    origin.route("/limited", sequence(respond(503, b"", {"Retry-After": when}), respond(200, PNG)))
    with make_fetcher(origin, sleeps, max_retries=1, backoff_max=30) as fetcher:
        image = fetcher.fetch(origin.url("/limited"))
    assert image.attempts == 2
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 5.0


def test_retry_after_beyond_backoff_max_gives_up_at_once(origin: LoopbackOrigin, sleeps: Sleeps) -> None:
    origin.route("/limited", respond(429, b"", {"Retry-After": "120"}))
    with make_fetcher(origin, sleeps, max_retries=3, backoff_max=30) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, origin.url("/limited"))
    assert time.monotonic() - started < 1
    assert (err.cause, err.retryable, err.status, err.retry_after) == ("rate_limited", True, 429, 120.0)
    assert origin.hits("/limited") == 1 and sleeps == []


def test_fetcher_is_usable_from_many_threads(origin: LoopbackOrigin) -> None:
    from concurrent.futures import ThreadPoolExecutor

    origin.route("/flaky", sequence(respond(500), respond(200, PNG)))
    urls = [origin.url("/poster.png")] * 30 + [origin.url("/flaky")] * 5 + [origin.url("/missing.png")] * 5
    with make_fetcher(origin, max_retries=1) as fetcher, ThreadPoolExecutor(12) as pool:

        def outcome(url: str) -> str:
            try:
                return "ok" if fetcher.fetch(url).data == PNG else "wrong bytes"
            except FetchError as exc:
                return exc.cause

        results = list(pool.map(outcome, urls))
    assert results.count("ok") == 35 and results.count("gone") == 5
