"""Push what a pipeline run did to a Prometheus Pushgateway (PROMETHEUS_PUSHGATEWAY_URL), so that
batch runs, which live too short to be scraped, show in Prometheus next to the serving API.

Each run pushes one group, `job="tvdb_images_pipeline", stage=<stage>, run_id=<run id>`: concurrent
runs (two partition ranges of a backfill) never overwrite each other, and a retried run replaces its
own figures. The values are gauges holding that run's totals; summed over the groups they are the
totals of the runs kept. Groups older than the retention (PROMETHEUS_PUSHGATEWAY_RETENTION_HOURS) are
deleted by the next push of any run, so the Pushgateway never grows with the run count and a sum
over groups reads "over the last N hours". A Pushgateway that is down or slow costs one warning in
the run's log, never a failed run. No Dagster here: the definitions call it at the end of each step.
Docs: docs/operations.md, Pipeline metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, delete_from_gateway, push_to_gateway

from tvdb_images.pipeline.causes import FAILURE_CAUSES
from tvdb_images.pipeline.cleanup import CleanupReport
from tvdb_images.pipeline.report import StageReport

log = logging.getLogger(__name__)

JOB = "tvdb_images_pipeline"
PREFIX = "tvdb_images_pipeline"
TIMEOUT_SECONDS = 3.0
CLEANUP_OUTCOMES = (
    "objects_listed",
    "objects_referenced",
    "orphans_found",
    "orphans_in_grace",
    "orphans_in_progress",
    "kept_on_recheck",
    "deleted",
    "would_delete",
)


@dataclass(frozen=True)
class PushTarget:
    """Where and how long: the Pushgateway's base URL and how long a run's group is kept there."""

    url: str
    retention_seconds: float
    timeout: float = TIMEOUT_SECONDS


def stage_registry(report: StageReport) -> CollectorRegistry:
    """One download or render run's totals as gauges (every known cause, 0 included: the failure
    series exist from the first run on, so ratios and alerts have something to divide)."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, list(labels), registry=registry)

    gauge("artworks_succeeded", "Artworks the run processed (unchanged ones included).").set(report.succeeded)
    gauge("artworks_unchanged", "Artworks the run found with nothing to write.").set(report.skipped)
    failed = gauge("artworks_failed", "Artworks the run failed, by failure cause.", ["cause"])
    causes = set(FAILURE_CAUSES) | set(report.failures_by_cause)
    for cause in sorted(causes):
        failed.labels(cause).set(report.failures_by_cause.get(cause, 0))
    moved = gauge("bytes", "Bytes the run read (in) and wrote (out).", ["direction"])
    moved.labels("in").set(report.bytes_in)
    moved.labels("out").set(report.bytes_out)
    gauge("objects_written", "Objects the run wrote to storage.").set(report.objects_written)
    gauge("elapsed_seconds", "Wall time of the run's stage.").set(report.elapsed_seconds)
    gauge("images_per_second", "Artworks processed per second of the stage's wall time.").set(
        report.images_per_second
    )
    phases = gauge("phase_seconds", "Wall seconds by phase, summed over worker threads.", ["phase"])
    cpu = gauge("phase_cpu_seconds", "CPU seconds by phase, summed over worker threads.", ["phase"])
    for phase, seconds in sorted(report.seconds_by_phase.items()):
        phases.labels(phase).set(seconds)
        cpu.labels(phase).set(report.cpu_seconds_by_phase.get(phase, 0.0))
    _finished(registry)
    return registry


def cleanup_registry(report: CleanupReport) -> CollectorRegistry:
    """One orphan cleanup run's totals as gauges."""
    registry = CollectorRegistry()
    objects = Gauge(
        "tvdb_images_cleanup_objects", "Objects the cleanup run counted, by outcome.", ["outcome"],
        registry=registry,
    )  # fmt: skip
    for outcome in CLEANUP_OUTCOMES:
        objects.labels(outcome).set(getattr(report, outcome))
    freed = Gauge(
        "tvdb_images_cleanup_bytes", "Bytes freed (freed) or that a dry run would free (would_free).",
        ["outcome"], registry=registry,
    )  # fmt: skip
    freed.labels("freed").set(report.bytes_freed)
    freed.labels("would_free").set(report.bytes_that_would_be_freed)
    Gauge(f"{PREFIX}_elapsed_seconds", "Wall time of the run's stage.", registry=registry).set(
        report.elapsed_seconds
    )
    _finished(registry)
    return registry


def _finished(registry: CollectorRegistry) -> None:
    Gauge(
        f"{PREFIX}_finished_timestamp_seconds", "When the run's stage ended (Unix time).", registry=registry
    ).set(time.time())


Warn = Callable[[str], None]


def push_stage_report(
    target: PushTarget | None, report: StageReport, run_id: str, warn: Warn = log.warning
) -> bool:
    return push(target, report.stage, run_id, lambda: stage_registry(report), warn)


def push_cleanup_report(
    target: PushTarget | None, report: CleanupReport, run_id: str, warn: Warn = log.warning
) -> bool:
    return push(target, "cleanup", run_id, lambda: cleanup_registry(report), warn)


def push(
    target: PushTarget | None,
    stage: str,
    run_id: str,
    build: Callable[[], CollectorRegistry],
    warn: Warn = log.warning,
) -> bool:
    """Push one run's group and expire old groups; False (and a warning) if the Pushgateway failed."""
    if target is None:
        return False
    try:
        push_to_gateway(
            target.url,
            job=JOB,
            registry=build(),
            grouping_key=grouping_key(stage, run_id),
            timeout=target.timeout,
        )
    except Exception as exc:  # metrics must never fail a run: whatever the gateway did, warn and go on
        warn(f"metrics not pushed to the Pushgateway {target.url} ({stage} {run_id}): {exc}")
        return False
    try:
        expire_groups(target)
    except Exception as exc:
        warn(f"old Pushgateway groups not expired at {target.url}: {exc}")
    return True


def grouping_key(stage: str, run_id: str) -> dict[str, str]:
    return {"stage": stage, "run_id": run_id}


def expire_groups(target: PushTarget, *, now: float | None = None) -> list[dict[str, str]]:
    """Delete this job's groups last pushed more than the retention ago; the groups deleted."""
    answer = httpx.get(f"{target.url.rstrip('/')}/api/v1/metrics", timeout=target.timeout)
    answer.raise_for_status()
    cutoff = (time.time() if now is None else now) - target.retention_seconds
    expired = []
    for group in answer.json().get("data", []):
        labels = group.get("labels", {})
        if labels.get("job") != JOB or "stage" not in labels or "run_id" not in labels:
            continue
        pushed = _push_time(group)
        if pushed is not None and pushed < cutoff:
            delete_from_gateway(
                target.url,
                job=JOB,
                grouping_key={"stage": labels["stage"], "run_id": labels["run_id"]},
                timeout=target.timeout,
            )
            expired.append(labels)
    return expired


def _push_time(group: dict[str, Any]) -> float | None:
    """The group's `push_time_seconds` from the Pushgateway's JSON API."""
    for metric in group.get("push_time_seconds", {}).get("metrics", []):
        try:
            return float(metric["value"])
        except (KeyError, TypeError, ValueError):
            return None
    return None
