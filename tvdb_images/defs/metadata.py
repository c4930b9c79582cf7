"""Turn pipeline reports into Dagster materialization metadata an analyst can read and chart."""

from __future__ import annotations

from typing import Any

import dagster as dg

from tvdb_images.pipeline.report import StageReport


def stage_metadata(report: StageReport, partitions: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "partitions": dg.MetadataValue.int(partitions),
        "succeeded": dg.MetadataValue.int(report.succeeded),
        "failed": dg.MetadataValue.int(report.failed),
        "unchanged_skipped": dg.MetadataValue.int(report.skipped),
        "objects_written": dg.MetadataValue.int(report.objects_written),
        "bytes_in": dg.MetadataValue.int(report.bytes_in),
        "bytes_out": dg.MetadataValue.int(report.bytes_out),
        "mb_in": dg.MetadataValue.float(round(report.bytes_in / 1048576, 3)),
        "mb_out": dg.MetadataValue.float(round(report.bytes_out / 1048576, 3)),
        "images_per_second": dg.MetadataValue.float(round(report.images_per_second, 2)),
        "elapsed_seconds": dg.MetadataValue.float(round(report.elapsed_seconds, 3)),
        "failures_by_cause": dg.MetadataValue.json(dict(report.failures_by_cause)),
        "seconds_by_phase": dg.MetadataValue.json(
            {k: round(v, 3) for k, v in report.seconds_by_phase.items()}
        ),
        "cpu_seconds_by_phase": dg.MetadataValue.json(
            {k: round(v, 3) for k, v in report.cpu_seconds_by_phase.items()}
        ),
    }
    if report.failure_examples:
        metadata["failure_examples"] = dg.MetadataValue.json(dict(report.failure_examples))
    # Dagster copies a ranged run's metadata onto the event of every partition in the range, so
    # per-partition detail here would grow with the square of the range: a count only.
    metadata["partitions_with_success"] = dg.MetadataValue.int(len(report.by_partition))
    return metadata


def records_table(records: list[dict[str, Any]]) -> dg.MetadataValue:
    """A table from a list of flat dicts that share their keys (ints and strings)."""
    if not records:
        return dg.MetadataValue.table([], schema=dg.TableSchema(columns=[]))
    columns = [
        dg.TableColumn(name, "int" if isinstance(value, int) else "string")
        for name, value in records[0].items()
    ]
    return dg.MetadataValue.table(
        [dg.TableRecord(r) for r in records], schema=dg.TableSchema(columns=columns)
    )
