"""The definitions' end of the pipeline metrics: each step pushes its report to the Pushgateway
(PROMETHEUS_PUSHGATEWAY_URL) under its run id, warning in the run's log when that fails."""

from __future__ import annotations

import dagster as dg

from tvdb_images.config import Settings
from tvdb_images.pipeline.cleanup import CleanupReport
from tvdb_images.pipeline.metrics_push import PushTarget, push_cleanup_report, push_stage_report
from tvdb_images.pipeline.report import StageReport


def push_target(settings: Settings) -> PushTarget | None:
    if settings.prometheus_pushgateway_url is None:
        return None
    return PushTarget(settings.prometheus_pushgateway_url, settings.pushgateway_retention_hours * 3600)


def push_report(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    settings: Settings,
    report: StageReport | CleanupReport,
) -> None:
    """Push one step's totals; never raises (a Pushgateway that is down is a warning)."""
    target = push_target(settings)
    if isinstance(report, CleanupReport):
        push_cleanup_report(target, report, context.run.run_id, context.log.warning)
    else:
        push_stage_report(target, report, context.run.run_id, context.log.warning)
