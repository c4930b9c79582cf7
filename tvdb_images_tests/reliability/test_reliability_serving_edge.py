"""The serving API as proxies, browsers, CDNs and attackers meet it: `tvdb-images serve` as a real
uvicorn process over PostgreSQL + SeaweedFS data from a real sync (the embedded setup where only the
HTTP layer matters), spoken to over plain sockets so that nothing normalizes what is sent.

Each case is recorded for docs/reliability.md (section "The serving API at its edges")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from serving.negotiation import parse_accept
from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.raw_http import request, send, trickle
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.serving_data import ADMIN_TOKEN, ServedData, serve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IMAGE = "/api/v1/images/series/101/poster/small"


def edge(item: int, case: str, observed: object) -> None:
    record("serving_edge", item=item, case=case, observed=observed)


# -- 1: starting under CPU pressure -----------------------------------------------------------------


def _worker_pids(supervisor: int) -> set[int]:
    """The supervisor's spawned worker processes (not multiprocessing's resource tracker)."""
    pids: set[int] = set()
    for children in Path(f"/proc/{supervisor}/task").glob("*/children"):
        try:
            candidates = [int(pid) for pid in children.read_text().split()]
        except OSError:
            continue
        for pid in candidates:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.add(pid)
    return pids


@pytest.mark.slow  # saturates every core: nothing else may run beside it
def test_workers_come_up_and_stay_under_cpu_saturation(production_data: ServedData, tmp_path: Path) -> None:
    """A busy loop on every core, and the server at a lower priority than the loops (nice 10: about a
    tenth of a core each), so that importing the app takes many seconds of wall time, as on a loaded
    machine. Before SERVING_WORKER_HEALTHCHECK_SECONDS, uvicorn killed every worker that had not
    answered its 5 s health ping yet, and started another that met the same fate. Every worker process
    the supervisor ever had is sampled from /proc: two means none was replaced."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(os.cpu_count() or 1)
    ]
    port = free_port()
    tvdb_images = str(Path(sys.executable).with_name("tvdb-images"))
    argv = ["nice", "-n", "10", tvdb_images, "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **production_data.env, "PYTHONUNBUFFERED": "1"}
    server = ManagedProcess("saturated", [*argv, "--workers", "2"], env=env, cwd=tmp_path, log_dir=tmp_path)
    seen: set[int] = set()
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.2):
            seen.update(_worker_pids(server.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    try:
        server.start()
        sampler.start()
        server.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=240)
        ready_after = time.monotonic() - started
        time.sleep(8)  # the supervisor keeps pinging: no worker may be replaced once up either
        statuses = [httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code for _ in range(4)]
    finally:
        sampling.set()
        sampler.join()
        for hog in hogs:
            hog.kill()
            hog.wait()
        server.stop()
    edge(
        1,
        f"`serve --workers 2` at nice 10 beside {len(hogs)} busy loops",
        f"/readyz 200 after {ready_after:.0f} s; worker processes in {time.monotonic() - started:.0f} s: "
        f"{len(seen)}",
    )
    assert statuses == [200] * 4
    assert len(seen) == 2, server.log_tail()


# -- 5: rate limits ---------------------------------------------------------------------------------


def _launch_statuses(port: int, forwarded_for: Sequence[str], query: str = "limit=5") -> list[int]:
    return [
        request(
            port,
            f"/api/v1/admin/sync/images/missing?{query}",
            {**ADMIN, "X-Forwarded-For": address, "Content-Length": "0"},
            method="POST",
        ).status
        for address in forwarded_for
    ]


def test_rate_limit_is_not_bypassed_by_forwarded_for_and_holds_across_workers(
    embedded_data: ServedData, tmp_path: Path
) -> None:
    budget = {"ADMIN_SYNC_BURST": "4", "ADMIN_SYNC_RATE_PER_MINUTE": "0.01"}
    rotating = [f"198.51.100.{n}" for n in range(12)]
    with serve(embedded_data, tmp_path, budget, args=["--workers", "2"]) as (port, _):
        statuses = _launch_statuses(port, rotating)
        invalid = _launch_statuses(port, ["198.51.100.99"], query="limit=0")
    allowed = sum(status != 429 for status in statuses)
    edge(
        5,
        "12 launches from loopback, each with a new X-Forwarded-For, 2 workers, burst 4",
        f"{allowed} let through (503: Dagster down), {statuses.count(429)} answered 429",
    )
    edge(5, "`limit=0` once the budget is spent", f"{invalid[0]}")
    assert allowed <= 4 and statuses.count(429) >= 8
    assert invalid == [422]

    trusted = {**budget, "ADMIN_SYNC_BURST": "2", "TRUSTED_PROXIES": "127.0.0.1"}
    with serve(embedded_data, tmp_path, trusted) as (port, process):
        distinct = _launch_statuses(port, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
        same = _launch_statuses(port, ["203.0.113.9"] * 3)
        process.stop()
    clients = {
        json.loads(line)["client"]
        for line in process.log_tail(100_000).splitlines()
        if "http_request" in line
    }
    edge(
        5,
        "TRUSTED_PROXIES=127.0.0.1: 3 clients named by the proxy, then one client 3 times (burst 2)",
        f"{distinct} / {same}; clients logged: {sorted(clients)}",
    )
    assert 429 not in distinct and same[2] == 429
    assert {"203.0.113.1", "203.0.113.9"} <= clients


# -- 6: one URL per image ---------------------------------------------------------------------------


def test_one_url_per_image(production_data: ServedData, tmp_path: Path) -> None:
    encoded = [
        "/api/v1/images%2Fseries%2F101%2Fposter%2Fsmall",
        "/api/v1/images/series%2F101/poster/small",
        "/api/v1/images/series/101/poster%2fsmall",
        "/api/v1/images/series/101%5Cposter/small",
    ]
    ids = [
        "+101",
        "0101",
        "101.0",
        "1_01",
        "%20101",
        "101%20",
        "0x65",
        "%EF%BC%91%EF%BC%90%EF%BC%91",
    ]  # the last: fullwidth 101
    with serve(production_data, tmp_path) as (port, _):
        canonical = request(port, IMAGE).status
        encoded_statuses = [request(port, target).status for target in encoded]
        id_statuses = [request(port, f"/api/v1/images/series/{i}/poster/small").status for i in ids]
        artwork_ids = [request(port, f"/api/v1/images/artwork/{i}").status for i in ("05003", "+5003")]
    edge(6, "encoded `/` or `\\` in the path (4 spellings)", f"{encoded_statuses}")
    edge(6, f"non-canonical ids {ids} and artwork ids 05003, +5003", f"{id_statuses}, {artwork_ids}")
    assert canonical == 200
    assert encoded_statuses == [404] * len(encoded)
    assert id_statuses == [422] * len(ids) and artwork_ids == [422, 422]


# -- 8: what a request may cost ---------------------------------------------------------------------


def test_header_size_count_and_time_are_bounded(embedded_data: ServedData, tmp_path: Path) -> None:
    limits = {
        "SERVING_HEADER_TIMEOUT_SECONDS": "2",
        "SERVING_MAX_HEADER_BYTES": "16384",
        "SERVING_MAX_HEADERS": "50",
    }
    accept_header = ",".join(["image/x-y;q=0.5"] * 7_000)
    with serve(embedded_data, tmp_path, limits) as (port, _):
        request_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        slow_seconds, slow = trickle(port, request_head, interval=0.25, give_up_after=20)
        idle_seconds, idle = trickle(port, b"", interval=0.25, give_up_after=20)
        many = send(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % n for n in range(60))
            + b"\r\n",
        )
        big = request(port, "/healthz", {"Cookie": "c" * 20_000})
        accept = request(port, IMAGE, {"Accept": accept_header})
        fine = request(port, "/healthz", {"X-Ok": "1"})
    edge(
        8,
        "headers trickled one byte every 0.25 s (SERVING_HEADER_TIMEOUT_SECONDS=2)",
        f"{slow.status if slow else 'still open'} after {slow_seconds:.1f} s",
    )
    edge(
        8,
        "a connection that sends nothing",
        f"{idle.status if idle else 'still open'} after {idle_seconds:.1f} s",
    )
    edge(
        8,
        "60 headers (SERVING_MAX_HEADERS=50) / a 20 KB cookie (SERVING_MAX_HEADER_BYTES=16384)",
        f"{many.status} / {big.status}",
    )
    edge(8, f"a {len(accept_header) // 1000} KB Accept header", f"{accept.status}")
    assert slow is not None and slow.status == 408 and slow_seconds < 10
    assert idle is not None and idle.status == 408 and 1 < idle_seconds < 10
    assert (many.status, big.status, accept.status) == (431, 431, 431)
    assert fine.status == 200


def test_accept_parsing_costs_the_same_for_any_length() -> None:
    header = ",".join(["image/x-y;q=0.5"] * 7_000)  # 112 KB, past the 107 KB that cost 191 ms before
    started = time.perf_counter()
    ranges = parse_accept(header)
    elapsed_ms = (time.perf_counter() - started) * 1000
    edge(
        8,
        f"parse_accept of a {len(header) // 1000} KB Accept header (in process)",
        f"{len(ranges)} ranges kept, {elapsed_ms:.2f} ms",
    )
    assert len(ranges) <= 32


def test_errors_name_no_internal_address(production_data: ServedData, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with serve(production_data, tmp_path, {"S3_ENDPOINT_URL": down, "SERVING_BYTE_CACHE_MB": "0"}) as (
        port,
        process,
    ):
        ready = request(port, "/readyz")
        image = request(port, IMAGE)
        launch = request(
            port, "/api/v1/admin/sync/images/series/101", {**ADMIN, "Content-Length": "0"}, method="POST"
        )
        process.stop()
    answers = b"\n".join(r.body for r in (ready, image, launch)).decode()
    internal = [
        needle for needle in (down, down.split("//")[1], "127.0.0.1", "series/", ".webp") if needle in answers
    ]
    edge(
        8,
        "/readyz, an image and an admin launch with S3 and Dagster down",
        f"{ready.status} {json.loads(ready.body)['checks']['storage']['error']!r}, {image.status} "
        f"{json.loads(image.body)['message']!r}, {launch.status}; internal names in bodies: {internal}",
    )
    assert (ready.status, image.status, launch.status) == (503, 503, 503)
    assert internal == []
    assert down.split("//")[1] in process.log_tail(200_000)  # the operator still sees where
