"""The connect-time SSRF guard: what it resolves, what it refuses, where it really connects.

Tests that need a public address use a fake resolver and a recording backend, so nothing here
connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import httpcore
import pytest

from tvdb_images.fetch import (
    AllowList,
    FetchError,
    FetchPolicy,
    GuardedBackend,
    GuardedTransport,
    ImageFetcher,
)
from tvdb_images.fetch.addresses import IPAddress
from tvdb_images_tests.support.origins import LoopbackOrigin, respond

BODY = b"GIF89a tiny"


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as server:
        server.route("/a.gif", respond(200, BODY, {"Content-Type": "image/gif"}))
        yield server


def test_ip_literal_entry_reaches_the_loopback_origin(origin: LoopbackOrigin) -> None:
    with ImageFetcher(FetchPolicy(allowed_hosts=frozenset({origin.netloc}))) as fetcher:
        assert fetcher.fetch(origin.url("/a.gif")).data == BODY


def test_listed_host_name_resolving_to_loopback_is_refused(origin: LoopbackOrigin) -> None:
    hosts = frozenset({f"localhost:{origin.port}", origin.netloc})  # even with the IP entry present
    policy = FetchPolicy(allowed_hosts=hosts, max_retries=3)
    with ImageFetcher(policy, sleep=lambda _: None) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(origin.url("/a.gif", host="localhost"))
    err = caught.value
    assert (err.cause, err.retryable, err.gone, err.attempts) == ("private_address", False, False, 1)
    assert "loopback" in err.detail
    assert origin.hits("/a.gif") == 0


def test_ip_literal_trust_is_port_specific(origin: LoopbackOrigin) -> None:
    other = LoopbackOrigin().start()
    try:
        other.route("/a.gif", respond(200, BODY))
        # The list names 127.0.0.1 on origin's port only; the other port is refused by the list...
        policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}))
        with ImageFetcher(policy) as fetcher, pytest.raises(FetchError) as caught:
            fetcher.fetch(other.url("/a.gif"))
        assert caught.value.cause == "forbidden_host"
        # ...and by the guard itself, should a list ever let such a URL through.
        backend = GuardedBackend(AllowList([origin.netloc]))
        with pytest.raises(FetchError) as caught:
            backend.connect_tcp("127.0.0.1", other.port, timeout=1)
        assert caught.value.cause == "private_address"
        assert other.hits("/a.gif") == 0
    finally:
        other.stop()


def test_guard_applies_at_connect_time_whatever_the_url_check_said(origin: LoopbackOrigin) -> None:
    # "images.test" passes the allow-list; the DNS answer (127.0.0.1) is what the guard judges.
    policy = FetchPolicy(allowed_hosts=frozenset({"images.test"}))
    transport = GuardedTransport(policy.allow_list, resolver=FakeResolver("127.0.0.1"))
    with ImageFetcher(policy, transport=transport) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://images.test:{origin.port}/a.gif")
    assert caught.value.cause == "private_address"
    assert origin.hits("/a.gif") == 0


def test_proxy_environment_cannot_route_around_the_guard(
    origin: LoopbackOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If the client honoured these, the "proxy" (our origin) would fetch localhost on our behalf.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, origin.url("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = FetchPolicy(allowed_hosts=frozenset({"localhost"}))
    with ImageFetcher(policy) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://localhost:{origin.port}/a.gif")
    assert caught.value.cause == "private_address"
    assert origin.hits("/a.gif") == 0


# -- the backend on its own, with a fake resolver and a backend that only records ------------------


class RecordingBackend(httpcore.NetworkBackend):
    """Pretends to connect; refuses addresses listed in `unreachable`."""

    def __init__(self, unreachable: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, int]] = []
        self.unreachable = unreachable

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kwargs: object) -> object:
        self.calls.append((host, port))
        if host in self.unreachable:
            raise httpcore.ConnectError(f"{host} unreachable")
        return httpcore.NetworkStream()


class FakeResolver:
    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls += 1
        return list(self.answers)


def guarded(resolver: FakeResolver, inner: RecordingBackend, *entries: str) -> GuardedBackend:
    return GuardedBackend(AllowList(entries or ["images.test"]), resolver=resolver, inner=inner)


def test_connects_to_the_address_it_checked_not_the_name() -> None:
    resolver, inner = FakeResolver("93.184.216.34"), RecordingBackend()
    guarded(resolver, inner).connect_tcp("images.test", 443, timeout=1)
    assert inner.calls == [("93.184.216.34", 443)]  # an IP: nothing is resolved a second time
    assert resolver.calls == 1


@pytest.mark.parametrize(
    "answers",
    [
        ("127.0.0.1",),
        ("169.254.169.254",),
        ("10.0.0.7",),
        ("93.184.216.34", "192.168.1.10"),  # one bad address spoils the answer
        ("2606:4700::6810:85e5", "::ffff:127.0.0.1"),
        ("fd00::1",),
    ],
)
def test_any_non_public_answer_is_refused_before_connecting(answers: tuple[str, ...]) -> None:
    inner = RecordingBackend()
    with pytest.raises(FetchError) as caught:
        guarded(FakeResolver(*answers), inner).connect_tcp("images.test", 443, timeout=1)
    assert caught.value.cause == "private_address"
    assert inner.calls == []


def test_tries_each_checked_address_in_turn() -> None:
    inner = RecordingBackend(unreachable=frozenset({"2606:4700::6810:85e5"}))
    guarded(FakeResolver("2606:4700::6810:85e5", "93.184.216.34"), inner).connect_tcp("images.test", 80)
    assert inner.calls == [("2606:4700::6810:85e5", 80), ("93.184.216.34", 80)]


def test_all_addresses_unreachable_is_a_connect_error() -> None:
    inner = RecordingBackend(unreachable=frozenset({"93.184.216.34"}))
    with pytest.raises(httpcore.ConnectError):
        guarded(FakeResolver("93.184.216.34"), inner).connect_tcp("images.test", 80)


def test_resolution_failure_is_a_connect_error() -> None:
    def fail(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    backend = GuardedBackend(AllowList(["images.test"]), resolver=fail, inner=RecordingBackend())
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        backend.connect_tcp("images.test", 443)


def test_ip_literals_are_judged_without_resolving() -> None:
    resolver, inner = FakeResolver(), RecordingBackend()
    backend = guarded(resolver, inner, "10.1.2.3:8080", "93.184.216.34")
    backend.connect_tcp("10.1.2.3", 8080)  # named by an IP-literal entry: trusted
    backend.connect_tcp("93.184.216.34", 443)
    with pytest.raises(FetchError):
        backend.connect_tcp("10.1.2.3", 8081)
    with pytest.raises(FetchError):
        backend.connect_tcp("169.254.169.254", 80)
    assert inner.calls == [("10.1.2.3", 8080), ("93.184.216.34", 443)]
    assert resolver.calls == 0


def test_unix_sockets_are_never_used() -> None:
    with pytest.raises(httpcore.ConnectError):
        GuardedBackend(AllowList([])).connect_unix_socket("/var/run/docker.sock")
