"""URL vetting, the allow-list, the policy's own checks and FetchError's flags: no sockets involved."""

from __future__ import annotations

import pickle

import pytest

from tvdb_images.fetch import CAUSES, RETRYABLE_CAUSES, AllowList, FetchError, FetchPolicy, ImageFetcher
from tvdb_images.fetch.errors import error
from tvdb_images.fetch.urls import HostEntry, check_url, parse_entry

ALLOW = AllowList(["artworks.thetvdb.com", "images.example:8443", "127.0.0.1:8765", "[::1]:8080"])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://artworks.thetvdb.com/a.jpg",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://artworks.thetvdb.com/",
        "http://user:pass@artworks.thetvdb.com/a.jpg",
        "https://user@artworks.thetvdb.com/a.jpg",
        "http:///a.jpg",
        "http://",
        "/banners/a.jpg",
        "artworks.thetvdb.com/a.jpg",
        "http://[::1/a.jpg",
        "http://artworks.thetvdb.com:99999/a.jpg",
        "",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_url(url, ALLOW)
    assert caught.value.cause == "bad_url"
    assert not caught.value.retryable and not caught.value.gone


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/a.jpg",
        "https://artworks.thetvdb.com.evil.example/a.jpg",
        "https://images.example/a.jpg",  # entry allows port 8443 only
        "https://images.example:8444/a.jpg",
        "http://127.0.0.1/a.jpg",
        "http://127.0.0.1:8766/a.jpg",
        "http://[::1]:8081/a.jpg",
        "http://localhost:8765/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_hosts_not_on_the_list_are_forbidden(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_url(url, ALLOW)
    assert caught.value.cause == "forbidden_host"
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://artworks.thetvdb.com/banners/a.jpg", "artworks.thetvdb.com", 443),
        ("http://ARTWORKS.TheTVDB.com/banners/a.jpg", "artworks.thetvdb.com", 80),
        ("https://artworks.thetvdb.com:8443/a.jpg", "artworks.thetvdb.com", 8443),  # any port
        ("https://artworks.thetvdb.com./a.jpg", "artworks.thetvdb.com", 443),
        ("https://images.example:8443/a.jpg", "images.example", 8443),
        ("http://127.0.0.1:8765/a.jpg", "127.0.0.1", 8765),
        ("http://[::1]:8080/a.jpg", "::1", 8080),
        ("http://[0:0::1]:8080/a.jpg", "::1", 8080),
    ],
)
def test_allowed_urls(url: str, host: str, port: int) -> None:
    target = check_url(url, ALLOW)
    assert (target.host, target.port) == (host, port)


def test_entries_are_parsed_and_normalized() -> None:
    assert parse_entry(" Artworks.TheTVDB.com ") == HostEntry("artworks.thetvdb.com")
    assert parse_entry("host:8080") == HostEntry("host", 8080)
    assert parse_entry("[::1]:8080") == HostEntry("::1", 8080)
    assert parse_entry("::1") == HostEntry("::1")
    assert parse_entry("[::1]") == HostEntry("::1")
    assert parse_entry("bücher.example") == HostEntry("xn--bcher-kva.example")
    assert parse_entry("127.0.0.1:8765").address is not None
    assert parse_entry("example.com").address is None


@pytest.mark.parametrize(
    "entry", ["", "http://host", "host:port", "host:0", "host:70000", "[::1", "a@b", "h/x"]
)
def test_malformed_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(entry)


def test_ip_literal_entries_are_the_only_trusted_addresses() -> None:
    import ipaddress

    assert ALLOW.trusts_address(ipaddress.ip_address("127.0.0.1"), 8765)
    assert not ALLOW.trusts_address(ipaddress.ip_address("127.0.0.1"), 8766)
    assert ALLOW.trusts_address(ipaddress.ip_address("::1"), 8080)
    assert not ALLOW.trusts_address(ipaddress.ip_address("10.0.0.1"), 443)


def test_policy_normalizes_and_validates() -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"Artworks.TheTVDB.com"}))
    assert policy.allowed_hosts == frozenset({"artworks.thetvdb.com"})
    assert FetchPolicy(allowed_hosts=["a.example"]).allowed_hosts == frozenset({"a.example"})
    with pytest.raises(TypeError):
        FetchPolicy(allowed_hosts="a.example")
    with pytest.raises(ValueError):
        FetchPolicy(allowed_hosts=frozenset({"http://a.example/"}))
    invalid = [("max_bytes", 0), ("total_timeout", 0), ("per_host_concurrency", 0), ("max_retries", -1)]
    for field, value in invalid:
        with pytest.raises(ValueError, match=field):
            FetchPolicy(allowed_hosts=frozenset(), **{field: value})


def test_fetch_refuses_bad_urls_before_any_request() -> None:
    with ImageFetcher(FetchPolicy(allowed_hosts=frozenset({"artworks.thetvdb.com"}))) as fetcher:
        for url, cause in [
            ("file:///etc/passwd", "bad_url"),
            ("https://u:p@artworks.thetvdb.com/a.jpg", "bad_url"),
            ("https://elsewhere.example/a.jpg", "forbidden_host"),
        ]:
            with pytest.raises(FetchError) as caught:
                fetcher.fetch(url)
            assert caught.value.cause == cause
            assert caught.value.attempts == 1


def test_error_flags_follow_the_cause() -> None:
    assert RETRYABLE_CAUSES <= CAUSES
    for cause in CAUSES:
        made = error(cause, "x")
        assert made.retryable == (cause in RETRYABLE_CAUSES)
        assert made.gone == (cause == "gone")
    expected = {"server_error", "rate_limited", "timeout", "connection_error", "length_mismatch"}
    assert expected == RETRYABLE_CAUSES


def test_fetch_error_survives_pickling() -> None:
    original = FetchError("rate_limited", "HTTP 429", retryable=True, status=429, attempts=3, retry_after=7.0)
    copy = pickle.loads(pickle.dumps(original))
    assert vars(copy) == vars(original)
    assert str(copy) == "rate_limited: HTTP 429"
