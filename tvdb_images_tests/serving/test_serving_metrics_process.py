"""`tvdb-images serve --workers 2` as deployed: every worker's counts in each scrape, whichever worker
answers it, and a real Prometheus scraping the API and answering PromQL over its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from serving.tally import FLUSH_SECONDS
from tvdb_images_tests.support.metrics_support import IMAGE_ROUTE, value
from tvdb_images_tests.support.processes import ManagedProcess, start_api_server
from tvdb_images_tests.support.prometheus_stack import prometheus_stack
from tvdb_images_tests.support.serving_data import ServedData
from tvdb_images_tests.support.waiting import wait_until

TOKEN = "scrape-token"
IMAGE = "/api/v1/images/series/101/poster/medium"
REQUESTS = 40
HEALTHCHECK_SECONDS = 30


@dataclass
class Served:
    base_url: str
    port: int
    process: ManagedProcess
    metrics_dir: Path


@pytest.fixture
def two_workers(served: ServedData, tmp_path: Path) -> Iterator[Served]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = {
        **os.environ,
        **served.env,
        "PYTHONUNBUFFERED": "1",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # The supervisor notices a killed worker when a health ping goes unanswered this long.
        "SERVING_WORKER_HEALTHCHECK_SECONDS": str(HEALTHCHECK_SECONDS),
    }
    process, port = start_api_server(
        "tvdb-images-serve-2", env, cwd=tmp_path, log_dir=tmp_path, extra_args=["--workers", "2"], timeout=120
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", port, process, metrics_dir)
    finally:
        process.stop()


def _image_counts(directory: Path) -> dict[str, float]:
    """Each worker's own count of image GETs answered 200, read from its file (named by its pid)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if name == "tvdb_images_http_requests_total" and labels.get("route") == IMAGE_ROUTE:
                total += count if labels.get("status") == "200" else 0
        counts[path.stem.split("_")[-1]] = total
    return counts


def _scrape(base_url: str) -> str:
    # A new connection each time, so that the kernel hands scrapes to either worker.
    answer = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_counts_sum_over_workers_and_prometheus_scrapes_them(two_workers: Served, tmp_path: Path) -> None:
    assert not (two_workers.metrics_dir / "counter_999999.db").exists()  # emptied at start
    assert httpx.get(f"{two_workers.base_url}/metrics", timeout=10).status_code == 401
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # One connection per request, eight at a time, until both workers have answered some. Each
        # worker writes its counts to its own file (named by its pid) within FLUSH_SECONDS.
        while sent < REQUESTS or min(_image_counts(two_workers.metrics_dir).values()) == 0:
            assert sent < 50 * REQUESTS, "one worker accepted every connection"
            statuses = list(
                pool.map(lambda _: httpx.get(f"{two_workers.base_url}{IMAGE}").status_code, range(8))
            )
            assert statuses == [200] * 8
            sent += 8
            time.sleep(2 * FLUSH_SECONDS)
    per_worker = _image_counts(two_workers.metrics_dir)
    assert len(per_worker) == 2 and sum(per_worker.values()) == sent, per_worker

    labels = {"route": IMAGE_ROUTE, "status": "200", "method": "GET"}
    for _ in range(6):  # whichever worker answers, the scrape has every worker's count
        assert value(_scrape(two_workers.base_url), "tvdb_images_http_requests_total", labels) == sent

    target = f"127.0.0.1:{two_workers.port}"
    with prometheus_stack(tmp_path / "prometheus", targets=[target], token=TOKEN) as stack:
        promql = f'sum(tvdb_images_http_requests_total{{route="{IMAGE_ROUTE}",status="200"}})'
        result = stack.prometheus.wait_for(promql, timeout=90)
        assert float(result[0]["value"][1]) == sent
        (api,) = [t for t in stack.prometheus.targets() if t["labels"]["job"] == "tvdb-images-api"]
        assert api["health"] == "up", api
        up = stack.prometheus.wait_for('up{job="pushgateway"} == 1', timeout=60)
        assert up

    # A worker that dies: the supervisor replaces it and drops its live gauge; its counts stay.
    victim = next(iter(per_worker))
    os.kill(int(victim), signal.SIGKILL)
    wait_until(
        lambda: not (two_workers.metrics_dir / f"gauge_livesum_{victim}.db").exists(),
        HEALTHCHECK_SECONDS + 60,
        interval=0.5,
        message="the dead worker's gauge file is still there",
    )
    assert (two_workers.metrics_dir / f"counter_{victim}.db").exists()
    assert value(_scrape(two_workers.base_url), "tvdb_images_http_requests_total", labels) == sent
