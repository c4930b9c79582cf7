"""Debian's Prometheus (and Pushgateway) for tests: each started on a free loopback port with a
generated config and a temporary storage directory, stopped by the pid started here.

    with prometheus_stack(tmp_path, targets=["127.0.0.1:8123"]) as stack:
        stack.prometheus.wait_for("tvdb_images_http_requests_total")

The Pushgateway is scraped by the same Prometheus (`honor_labels`, as its docs say), so metrics pushed
to it by a batch job appear in PromQL next to the API's.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tvdb_images_tests.support.processes import ManagedProcess, free_port
from tvdb_images_tests.support.waiting import wait_until

PROMETHEUS = "/usr/bin/prometheus"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
SCRAPE_SECONDS = 1


def require_binaries() -> None:
    """Skip with the install command when Debian's packages are missing (.ci/run installs them)."""
    for binary in (PROMETHEUS, PUSHGATEWAY):
        if not shutil.which(binary):
            pytest.skip(f"{binary} missing: apt-get install -y prometheus prometheus-pushgateway")


@dataclass
class Prometheus:
    url: str
    process: ManagedProcess

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; the result vector."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(self, promql: str, *, timeout: float = 60, predicate: Any = bool) -> list[dict[str, Any]]:
        """Query until the result satisfies `predicate` (default: not empty); the last result."""
        result: list[dict[str, Any]] = []

        def satisfied() -> tuple[list[dict[str, Any]]] | None:
            nonlocal result
            result = self.query(promql)
            return (result,) if predicate(result) else None  # a tuple: an empty result may satisfy it

        def last() -> str:
            return f"{promql!r} gave {result!r}:\n{self.process.log_tail()}"

        (found,) = wait_until(satisfied, timeout, interval=0.5, message=last)
        return found

    def targets(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return list(answer["data"]["activeTargets"])


@dataclass
class PrometheusStack:
    prometheus: Prometheus
    pushgateway_url: str


def scrape_config(
    targets: Sequence[str], pushgateway: str, *, metrics_path: str = "/metrics", token: str | None = None
) -> dict[str, Any]:
    """The generated configuration (JSON is YAML): the API's targets and the Pushgateway."""
    api: dict[str, Any] = {
        "job_name": "tvdb-images-api",
        "metrics_path": metrics_path,
        "static_configs": [{"targets": list(targets)}],
    }
    if token is not None:
        api["authorization"] = {"type": "Bearer", "credentials": token}
    return {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "scrape_configs": [
            api,
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pushgateway]}]},
        ],
    }


@contextmanager
def pushgateway(work_dir: Path) -> Iterator[str]:
    """Debian's Pushgateway alone on a free loopback port; its base URL."""
    require_binaries()
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Debian's default persists to /var/lib/prometheus/pushgateway.data, shared by every gateway on
    # the machine: each test's gateway keeps its groups in memory only.
    argv = [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    process = ManagedProcess("pushgateway", argv, log_dir=work_dir).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@contextmanager
def prometheus_stack(
    work_dir: Path, *, targets: Sequence[str], token: str | None = None
) -> Iterator[PrometheusStack]:
    require_binaries()
    work_dir.mkdir(parents=True, exist_ok=True)
    with pushgateway(work_dir) as push_url:
        prom_port = free_port()
        config = work_dir / "prometheus.yml"
        config.write_text(json.dumps(scrape_config(targets, push_url.removeprefix("http://"), token=token)))
        prometheus = ManagedProcess(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={work_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            log_dir=work_dir,
        ).start()
        try:
            prometheus.wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60)
            yield PrometheusStack(Prometheus(f"http://127.0.0.1:{prom_port}", prometheus), push_url)
        finally:
            prometheus.stop()
