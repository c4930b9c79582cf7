"""CPU per image request of the serving app, FastAPI's routes against the fast path (serving.fast_path).

    python -m benchmarks.serving_cost [--artworks 10] [--requests 3000] [--runs 5] [--output FILE]
                                      [--against routes|metrics_off]

Requests per second under `wrk` move with whatever else the machine runs; the process CPU time one
request costs hardly does. So this drives `--requests` requests through the ASGI app in-process (the
whole middleware stack: access log to /dev/null, metrics, HTTP policy, view counting; no socket and
no uvicorn) and divides this process's CPU time (all threads: storage reads run in the thread pool)
by their number. Paths, rotating over every size of every artwork:

- not modified: GET with the current ETag in If-None-Match (304);
- redirect: GET with CDN_BASE_URL set (307);
- stream, byte-cache hit: GET with the bytes in the byte cache (warmed first);
- stream, byte-cache miss: GET with SERVING_BYTE_CACHE_MB=0, every body read from SeaweedFS.

Setup: SeaweedFS and a fresh PostgreSQL catalog filled by a real sync of `--artworks` corpus artworks
(as benchmarks.serving). Each path runs `--runs` times per app, the two apps interleaved; medians.

`--against metrics_off` compares the fast path with Prometheus metrics on (the default) against the same
app with METRICS_ENABLED=false instead: what the metrics cost per request. Its share of this in-process
CPU is an upper bound of its share of a served request, which also pays uvicorn's parsing and the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import cpu_seconds, machine, median, table, write_results
from benchmarks.serving import CDN, served_renditions, sync_everything
from benchmarks.stack import running_stack
from serving.access_log import ACCESS_LOGGER, AccessLineHandler
from serving.app import create_app

PATHS = {
    "not_modified": ({}, 304),
    "redirect": ({"CDN_BASE_URL": CDN}, 307),
    "stream_cache_hit": ({}, 200),
    "stream_cache_miss": ({"SERVING_BYTE_CACHE_MB": 0}, 200),
}


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """What uvicorn hands the app for a GET."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), *headers],
    }


async def drive(app: Any, requests: list[tuple[str, list[tuple[bytes, bytes]]]], expected: int) -> None:
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for path, headers in requests:
        # As uvicorn: the (empty) body once, then nothing until the client goes away (never, here);
        # a streamed response listens for that while it sends.
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if sent_body:
                await asyncio.Event().wait()
            sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}

        await app(scope(path, headers), receive, send)
    wrong = [status for status in statuses if status != expected]
    if wrong or len(statuses) != len(requests):
        raise RuntimeError(f"expected {expected} for every request, got {sorted(set(statuses))}")


def request_list(stack: Any, name: str, count: int) -> list[tuple[str, list[tuple[bytes, bytes]]]]:
    one_round = []
    for rendition in served_renditions(stack, image_format="webp"):
        headers = [(b"accept", b"image/webp,*/*")]
        if name == "not_modified":
            headers.append((b"if-none-match", rendition.etag.encode()))
        one_round.append((rendition.path, headers))
    return (one_round * (count // len(one_round) + 1))[:count]


def quiet_access_log() -> None:
    """Access lines are written as in production (`configure_access_log`), to /dev/null, not stdout."""
    logger = logging.getLogger(ACCESS_LOGGER)
    handler = AccessLineHandler(open(os.devnull, "w"))  # noqa: SIM115  # lives as long as the process
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


COMPARISONS = {  # --against: (label, create_app keywords, extra settings) of the two apps
    "routes": (("routes", {"fast_path": False}, {}), ("fast_path", {"fast_path": True}, {})),
    "metrics_off": (("metrics_off", {}, {"METRICS_ENABLED": False}), ("metrics_on", {}, {})),
}


def measure(stack: Any, count: int, runs: int, against: str = "routes") -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (extra, expected) in PATHS.items():
        requests = request_list(stack, name, count)
        apps = {
            label: create_app(stack.settings(**extra, **settings), **keywords)
            for label, keywords, settings in COMPARISONS[against]
        }
        loop = asyncio.new_event_loop()
        samples: dict[str, list[float]] = {label: [] for label in apps}
        wall: dict[str, list[float]] = {label: [] for label in apps}
        for app in apps.values():  # warm: lookups and byte cache filled, code paths compiled
            loop.run_until_complete(drive(app, requests[: min(count, 400)], expected))
        for _ in range(runs):
            for label, app in apps.items():
                started, cpu = time.perf_counter(), cpu_seconds()
                loop.run_until_complete(drive(app, requests, expected))
                samples[label].append((cpu_seconds() - cpu) / count * 1e6)
                wall[label].append((time.perf_counter() - started) / count * 1e6)
        loop.close()
        for app in apps.values():
            app.state.serving.close()
        results[name] = {
            label: {"cpu_us": round(median(samples[label]), 1), "wall_us": round(median(wall[label]), 1)}
            for label in apps
        }
        print(name, results[name], file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--against", choices=sorted(COMPARISONS), default="routes")
    args = parser.parse_args(argv)
    quiet_access_log()
    before = machine()
    with running_stack("serving-cost") as stack:
        sync_everything(stack, args.artworks)
        results = measure(stack, args.requests, args.runs, args.against)
    (base, _, _), (other, _, _) = COMPARISONS[args.against]
    rows = [
        [
            name,
            found[base]["cpu_us"],
            found[other]["cpu_us"],
            f"{found[base]['cpu_us'] / found[other]['cpu_us']:.2f}x",
        ]
        for name, found in results.items()
    ]
    print(table(["path", f"{base} CPU µs/request", f"{other} CPU µs/request", "ratio"], rows))
    report = {"machine_before": before, "machine_after": machine(), "artworks": args.artworks}
    report |= {"requests": args.requests, "runs": args.runs, "against": args.against, "paths": results}
    suffix = "" if args.against == "routes" else f"_{args.against}"
    path = write_results(f"serving_cost{suffix}", report)
    if args.output:
        args.output.write_text(path.read_text())
    print(f"results: {path}")


if __name__ == "__main__":
    main()
