"""Redirects are followed by hand, and every hop is vetted like the first URL."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import pytest

from tvdb_images.fetch import FetchError, FetchPolicy, ImageFetcher
from tvdb_images_tests.support.origins import LoopbackOrigin, redirect, respond

BODY = b"\xff\xd8\xff\xe0 a jpeg, more or less"


@pytest.fixture
def origin() -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as server:
        server.route("/final.jpg", respond(200, BODY, {"Content-Type": "image/jpeg"}))
        yield server


def make_fetcher(origin: LoopbackOrigin, *extra_hosts: str, **limits: object) -> ImageFetcher:
    hosts = frozenset({origin.netloc, *extra_hosts})
    return ImageFetcher(FetchPolicy(allowed_hosts=hosts, **limits), sleep=lambda _: None)


def fetch_error(fetcher: ImageFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    return caught.value


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_followed(origin: LoopbackOrigin, status: int) -> None:
    origin.route("/old.jpg", redirect(origin.url("/final.jpg"), status))
    with make_fetcher(origin) as fetcher:
        image = fetcher.fetch(origin.url("/old.jpg"))
    assert image.data == BODY
    assert image.url == origin.url("/old.jpg")
    assert image.final_url == origin.url("/final.jpg")
    assert image.attempts == 1


def test_relative_redirect_chain_within_the_limit(origin: LoopbackOrigin) -> None:
    for hop in range(5):
        origin.route(f"/hop{hop}", redirect(f"/hop{hop + 1}" if hop < 4 else "final.jpg"))
    with make_fetcher(origin, max_redirects=5) as fetcher:
        image = fetcher.fetch(origin.url("/hop0"))
    assert image.final_url == origin.url("/final.jpg")


def test_too_many_redirects(origin: LoopbackOrigin) -> None:
    for hop in range(10):
        origin.route(f"/hop{hop}", redirect(f"/hop{hop + 1}"))
    with make_fetcher(origin, max_redirects=3, max_retries=2) as fetcher:
        err = fetch_error(fetcher, origin.url("/hop0"))
    assert (err.cause, err.retryable) == ("too_many_redirects", False)
    assert [origin.hits(f"/hop{n}") for n in range(5)] == [1, 1, 1, 1, 0]


def test_no_redirects_allowed(origin: LoopbackOrigin) -> None:
    origin.route("/old.jpg", redirect("/final.jpg"))
    with make_fetcher(origin, max_redirects=0) as fetcher:
        assert fetch_error(fetcher, origin.url("/old.jpg")).cause == "too_many_redirects"
    assert origin.hits("/final.jpg") == 0


@pytest.mark.parametrize(
    "chain",
    [
        ("/a", "/a"),
        ("/a", "/b", "/a"),
        ("/a", "/b", "/c", "/b"),
        ("/a", "/b#frag", "/a#other"),
    ],
)
def test_redirect_loop(origin: LoopbackOrigin, chain: tuple[str, ...]) -> None:
    """Each path in `chain` redirects to the next."""
    for path, location in pairwise(chain):
        origin.route(path.partition("#")[0], redirect(location))
    with make_fetcher(origin, max_redirects=10, max_retries=2) as fetcher:
        err = fetch_error(fetcher, origin.url("/a"))
    assert (err.cause, err.retryable) == ("redirect_loop", False)
    assert origin.hits("/a") == 1


@pytest.mark.parametrize(
    ("location", "cause"),
    [
        ("https://evil.example/steal.jpg", "forbidden_host"),
        ("http://169.254.169.254/latest/meta-data/", "forbidden_host"),
        ("http://127.0.0.2:{port}/final.jpg", "forbidden_host"),
        ("http://127.0.0.1:1/final.jpg", "forbidden_host"),
        ("ftp://127.0.0.1:{port}/final.jpg", "bad_url"),
        ("file:///etc/passwd", "bad_url"),
        ("http://user:secret@127.0.0.1:{port}/final.jpg", "bad_url"),
        ("http://[::1/final.jpg", "bad_url"),
    ],
)
def test_redirect_to_a_refused_url(origin: LoopbackOrigin, location: str, cause: str) -> None:
    origin.route("/old.jpg", redirect(location.format(port=origin.port)))
    with make_fetcher(origin, max_retries=2) as fetcher:
        err = fetch_error(fetcher, origin.url("/old.jpg"))
    assert err.cause == cause and not err.retryable
    assert origin.hits("/old.jpg") == 1


def test_redirect_to_a_listed_name_that_resolves_to_a_private_address(origin: LoopbackOrigin) -> None:
    # "localhost" is on the list, but it is 127.0.0.1: only the IP-literal entry may reach loopback.
    origin.route("/old.jpg", redirect(origin.url("/final.jpg", host="localhost")))
    with make_fetcher(origin, f"localhost:{origin.port}") as fetcher:
        err = fetch_error(fetcher, origin.url("/old.jpg"))
    assert (err.cause, err.retryable) == ("private_address", False)
    assert origin.hits("/final.jpg") == 0


def test_redirect_without_location_is_an_http_error(origin: LoopbackOrigin) -> None:
    origin.route("/old.jpg", respond(302))
    with make_fetcher(origin) as fetcher:
        err = fetch_error(fetcher, origin.url("/old.jpg"))
    assert (err.cause, err.status) == ("http_error", 302)


def test_error_after_a_redirect_is_retried_from_the_start(origin: LoopbackOrigin) -> None:
    from tvdb_images_tests.support.origins import sequence

    origin.route("/old.jpg", redirect("/flaky.jpg"))
    origin.route("/flaky.jpg", sequence(respond(500), respond(200, BODY)))
    with make_fetcher(origin, max_retries=1) as fetcher:
        image = fetcher.fetch(origin.url("/old.jpg"))
    assert image.data == BODY and image.attempts == 2
    assert origin.hits("/old.jpg") == 2
