"""Pipeline reports pushed to a real Pushgateway (Debian's): one group per run so concurrent runs
keep their own figures, old groups expired by the next push, and a Pushgateway that is down or
silent costs a warning within the timeout, never an exception."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tvdb_images.pipeline.causes import FAILURE_CAUSES
from tvdb_images.pipeline.cleanup import CleanupReport
from tvdb_images.pipeline.metrics_push import (
    JOB,
    PushTarget,
    expire_groups,
    push_cleanup_report,
    push_stage_report,
)
from tvdb_images.pipeline.report import StageReport
from tvdb_images_tests.support.processes import free_port
from tvdb_images_tests.support.prometheus_stack import pushgateway

DAY = 86400.0


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    with pushgateway(tmp_path / "pushgateway") as url:
        yield url


def _report(stage: str, succeeded: int, failures: dict[str, int]) -> StageReport:
    report = StageReport(stage=stage, elapsed_seconds=2.0)
    for _ in range(succeeded):
        report.add_success("series|0a", bytes_in=1000, bytes_out=300, objects_written=5)
    for cause, count in failures.items():
        for n in range(count):
            report.add_failure(cause, f"artwork {n}", "series|0a")
    with report.working_on("series|0a"):
        report.add_time("render", 0.5, 0.4)
    return report


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the Pushgateway exposes to Prometheus, keyed by name and labels."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job") == JOB
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def test_concurrent_runs_push_their_own_groups(gateway: str) -> None:
    target = PushTarget(gateway, DAY)
    reports = {
        "run-a": _report("download", 3, {"http_404": 1}),
        "run-b": _report("download", 5, {}),
        "run-c": _report("render", 2, {"too_many_pixels": 2}),
    }
    with ThreadPoolExecutor(3) as pool:
        pushed = list(pool.map(lambda item: push_stage_report(target, item[1], item[0]), reports.items()))
    assert pushed == [True, True, True]
    samples = _samples(gateway)
    for run_id, report in reports.items():
        key = {"stage": report.stage, "run_id": run_id}
        assert _value(samples, "tvdb_images_pipeline_artworks_succeeded", **key) == report.succeeded
        assert _value(samples, "tvdb_images_pipeline_bytes", direction="in", **key) == report.bytes_in
        assert _value(samples, "tvdb_images_pipeline_bytes", direction="out", **key) == report.bytes_out
        assert _value(samples, "tvdb_images_pipeline_images_per_second", **key) == report.images_per_second
        assert _value(samples, "tvdb_images_pipeline_phase_seconds", phase="render", **key) == 0.5
        # Every known cause is a series from the first run on, 0 where nothing failed.
        for cause in FAILURE_CAUSES:
            expected = report.failures_by_cause.get(cause, 0)
            assert _value(samples, "tvdb_images_pipeline_artworks_failed", cause=cause, **key) == expected
    # A run pushing again (a retry) replaces its own group only.
    assert push_stage_report(target, _report("download", 9, {}), "run-a")
    samples = _samples(gateway)
    assert _value(samples, "tvdb_images_pipeline_artworks_succeeded", run_id="run-a") == 9
    assert _value(samples, "tvdb_images_pipeline_artworks_succeeded", run_id="run-b") == 5


def test_cleanup_runs_push_their_outcomes(gateway: str) -> None:
    report = CleanupReport(dry_run=False, objects_listed=40, orphans_found=3, deleted=2, bytes_freed=512)
    assert push_cleanup_report(PushTarget(gateway, DAY), report, "run-clean")
    samples = _samples(gateway)
    key = {"stage": "cleanup", "run_id": "run-clean"}
    assert _value(samples, "tvdb_images_cleanup_objects", outcome="objects_listed", **key) == 40
    assert _value(samples, "tvdb_images_cleanup_objects", outcome="deleted", **key) == 2
    assert _value(samples, "tvdb_images_cleanup_bytes", outcome="freed", **key) == 512


def test_groups_older_than_the_retention_are_deleted_by_the_next_push(gateway: str) -> None:
    target = PushTarget(gateway, retention_seconds=3600)
    assert push_stage_report(target, _report("render", 1, {}), "old-run")
    # Nothing is old yet; an hour and a bit later, the old run's group goes and nothing else.
    assert expire_groups(target) == []
    expired = expire_groups(target, now=time.time() + 3601)
    assert [(g["stage"], g["run_id"]) for g in expired] == [("render", "old-run")]
    assert not any(ls for (_n, ls) in _samples(gateway) if ("run_id", "old-run") in ls)
    # Another job's groups on the same Pushgateway are left alone.
    httpx.post(f"{gateway}/metrics/job/other/run_id/x", content=b"other_metric 1\n", timeout=5)
    assert expire_groups(target, now=time.time() + 10 * DAY) == []


def test_a_pushgateway_that_is_down_costs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    warnings: list[str] = []
    target = PushTarget(f"http://127.0.0.1:{free_port()}", DAY, timeout=1.0)
    assert not push_stage_report(target, _report("download", 1, {}), "run-x", warnings.append)
    assert len(warnings) == 1 and "not pushed" in warnings[0] and "run-x" in warnings[0]
    assert push_stage_report(None, _report("download", 1, {}), "run-x", warnings.append) is False
    assert len(warnings) == 1  # no Pushgateway configured: nothing to say


def test_a_silent_pushgateway_is_given_up_after_the_timeout() -> None:
    """A listener that accepts connections and never answers (a hung gateway)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        target = PushTarget(f"http://127.0.0.1:{listener.getsockname()[1]}", DAY, timeout=0.5)
        warnings: list[str] = []
        started = time.monotonic()
        assert not push_stage_report(target, _report("render", 1, {}), "run-y", warnings.append)
        assert time.monotonic() - started < 5
        assert len(warnings) == 1 and "timed out" in warnings[0].lower()
