"""The per-host cap on simultaneous downloads, through the fetcher and on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tvdb_images.fetch import FetchPolicy, ImageFetcher
from tvdb_images.fetch.slots import HostSlots
from tvdb_images_tests.support.origins import LoopbackOrigin, OriginHandler

BODY = b"RIFF....WEBPVP8 " + bytes(5000)


class InFlight:
    """Counts requests the server is working on; each leaves the count before its response is sent,
    so a client that already has its answer can never be counted twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __call__(self, handler: OriginHandler) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.1)
        with self.lock:
            self.now -= 1
        handler.send_body(200, BODY, {"Content-Type": "image/webp"})


@pytest.fixture
def gauge() -> InFlight:
    return InFlight()


@pytest.fixture
def origin(gauge: InFlight) -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as server:
        server.route("/slow.webp", gauge)
        yield server


def test_twenty_threads_never_exceed_the_per_host_limit(origin: LoopbackOrigin, gauge: InFlight) -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}), per_host_concurrency=3)
    with ImageFetcher(policy) as fetcher, ThreadPoolExecutor(max_workers=20) as pool:
        images = list(pool.map(lambda _: fetcher.fetch(origin.url("/slow.webp")), range(40)))
    assert all(image.data == BODY for image in images)
    assert origin.hits("/slow.webp") == 40
    assert gauge.peak == 3  # the cap was reached, never passed


def test_limit_of_one_serializes(origin: LoopbackOrigin, gauge: InFlight) -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({origin.netloc}), per_host_concurrency=1)
    with ImageFetcher(policy) as fetcher, ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: fetcher.fetch(origin.url("/slow.webp")), range(6)))
    assert gauge.peak == 1


def test_slots_are_per_host_and_released_on_error() -> None:
    slots = HostSlots(2)
    held = threading.Barrier(3)
    release = threading.Event()

    def occupy(host: str) -> None:
        with slots.hold(host):
            held.wait()
            release.wait()

    threads = [threading.Thread(target=occupy, args=("a.example",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    held.wait(timeout=5)  # both slots of a.example are taken

    other_host = threading.Event()

    def use_other() -> None:
        with slots.hold("b.example"):
            other_host.set()

    threading.Thread(target=use_other).start()
    assert other_host.wait(timeout=2), "b.example must not wait for a.example"

    third = threading.Event()

    def wait_for_a() -> None:
        with slots.hold("a.example"):
            third.set()

    waiter = threading.Thread(target=wait_for_a)
    waiter.start()
    time.sleep(0.1)
    assert not third.is_set(), "a third holder of a.example got in"
    release.set()
    assert third.wait(timeout=2)
    for thread in [*threads, waiter]:
        thread.join(timeout=2)

    with pytest.raises(RuntimeError), slots.hold("c.example"):
        raise RuntimeError("download failed")
    with slots.hold("c.example"), slots.hold("c.example"):
        pass  # both slots free again after the failure
