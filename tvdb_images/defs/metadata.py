"""Turn pipeline reports into Dagster metadata an analyst can read and chart.

Numbers stay numbers (Dagster plots them across materializations); bytes also get a text value with
units beside them, breakdowns are tables and each event opens with a one-line Markdown summary.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from tvdb_images.pipeline.cleanup import CleanupReport
from tvdb_images.pipeline.report import StageReport, Tally

_UNITS = ("B", "KB", "MB", "GB", "TB")

FAILURES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("cause", "string", description="Why the artwork failed (its failure_cause)."),
        dg.TableColumn("count", "int"),
        dg.TableColumn("example", "string", description="The first failure's detail."),
    ]
)
PHASES_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("phase", "string"),
        dg.TableColumn("wall_seconds", "float", description="Summed over the worker threads."),
        dg.TableColumn("cpu_seconds", "float", description="CPU the threads used in the phase."),
    ]
)


def format_bytes(size: float) -> str:
    """'1.5 MB': decimal units, as storage consoles show sizes."""
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def summary_line(stage: str, tally: Tally) -> str:
    """What a stage did, in one sentence: '3 processed, 1 failed (empty: 1); 1.20 MB in, 310 KB out'."""
    if tally.attempted == 0:
        return f"**{stage}**: nothing to do"
    done = f"**{stage}**: {tally.succeeded} processed"
    if tally.skipped:
        done += f" ({tally.skipped} unchanged)"
    if tally.failed:
        causes = ", ".join(f"{cause}: {n}" for cause, n in tally.failures_by_cause.most_common())
        done += f", **{tally.failed} failed** ({causes})"
    return f"{done}; {format_bytes(tally.bytes_in)} in, {format_bytes(tally.bytes_out)} out"


def failures_table(tally: Tally) -> dg.MetadataValue:
    rows = [
        dg.TableRecord({"cause": cause, "count": count, "example": tally.failure_examples.get(cause, "")})
        for cause, count in tally.failures_by_cause.most_common()
    ]
    return dg.MetadataValue.table(rows, schema=FAILURES_SCHEMA)


def phases_table(tally: Tally) -> dg.MetadataValue:
    rows = [
        dg.TableRecord(
            {
                "phase": phase,
                "wall_seconds": round(seconds, 3),
                "cpu_seconds": round(tally.cpu_seconds_by_phase.get(phase, 0.0), 3),
            }
        )
        for phase, seconds in sorted(tally.seconds_by_phase.items())
    ]
    return dg.MetadataValue.table(rows, schema=PHASES_SCHEMA)


def tally_metadata(stage: str, tally: Tally) -> dict[str, Any]:
    """The metadata of one partition's materialization (or of a whole non-partitioned run)."""
    return {
        "summary": dg.MetadataValue.md(summary_line(stage, tally)),
        "succeeded": dg.MetadataValue.int(tally.succeeded),
        "failed": dg.MetadataValue.int(tally.failed),
        "unchanged_skipped": dg.MetadataValue.int(tally.skipped),
        "objects_written": dg.MetadataValue.int(tally.objects_written),
        "bytes_in": dg.MetadataValue.int(tally.bytes_in),
        "bytes_out": dg.MetadataValue.int(tally.bytes_out),
        "size_in": dg.MetadataValue.text(format_bytes(tally.bytes_in)),
        "size_out": dg.MetadataValue.text(format_bytes(tally.bytes_out)),
        "failures_by_cause": failures_table(tally),
        "time_by_phase": phases_table(tally),
    }


def run_metadata(report: StageReport) -> dict[str, Any]:
    """A whole run's metadata: its totals, plus how long it took and how fast it went."""
    return tally_metadata(report.stage, report) | {
        "elapsed_seconds": dg.MetadataValue.float(round(report.elapsed_seconds, 3)),
        "images_per_second": dg.MetadataValue.float(round(report.images_per_second, 2)),
    }


RUN_TOTALS_MARK = "\nrun totals: "


def run_summary(report: StageReport, partitions: int) -> str:
    """The run-level facts of a ranged run, logged once per run (not copied onto every partition): a
    sentence to read, then the totals as JSON for programs (`parse_run_totals`)."""
    sentence = (
        f"{summary_line(report.stage, report)} over {partitions} partitions "
        f"({len(report.by_partition)} with work) in {report.elapsed_seconds:.1f} s, "
        f"{report.images_per_second:.2f} images/s"
    )
    return sentence + RUN_TOTALS_MARK + json.dumps(report.as_dict(), sort_keys=True)


def parse_run_totals(message: str) -> dict[str, Any] | None:
    """The totals a `run_summary` message carries (None for any other message)."""
    if RUN_TOTALS_MARK not in message:
        return None
    return json.loads(message.split(RUN_TOTALS_MARK, 1)[1])


def add_partition_metadata(
    context: dg.AssetExecutionContext, per_partition: dict[str, dict[str, Any]], empty: dict[str, Any]
) -> int:
    """Give each partition this run materializes its own metadata (`empty` where it had no work).

    Dagster records one materialization per partition of a ranged run; metadata added for a partition
    goes onto that partition's event only. Returns how many partitions had work of their own.
    """
    # What `context.add_asset_metadata(metadata, partition_key=key)` does for each key, without
    # recomputing the run's partition range on every call to check the key is in it (128 calls took
    # 1.2 s on a loaded 2-core machine): the keys come from that range.
    step = context.get_step_execution_context()
    accumulator = step._metadata_accumulator
    with_work = 0
    for key in context.partition_keys:
        metadata = per_partition.get(str(key))
        with_work += metadata is not None
        accumulator = accumulator.with_additional_asset_metadata(
            asset_key=context.asset_key,
            partition_key=key,
            metadata=metadata if metadata is not None else empty,
        )
    step._metadata_accumulator = accumulator
    return with_work


DISCOVERY_COUNTS = ("to_download", "to_render", "stale_renditions", "failed_final", "gone", "processed")


def discovery_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    summary = (
        f"**{counts['to_download']} to download**, {counts['to_render']} to render, "
        f"{counts['processed']} processed, {counts['failed_final']} failed for good, {counts['gone']} gone"
    )
    metadata: dict[str, dg.MetadataValue] = {"summary": dg.MetadataValue.md(summary)}
    metadata.update({name: dg.MetadataValue.int(counts[name]) for name in DISCOVERY_COUNTS})
    return metadata


def cleanup_metadata(report: CleanupReport) -> dict[str, dg.MetadataValue]:
    """One partition's cleanup: what was listed, kept and (unless a dry run) deleted."""
    action = "would delete" if report.dry_run else "deleted"
    doomed = report.orphans_found - report.orphans_in_grace - report.orphans_in_progress
    count = doomed if report.dry_run else report.deleted
    summary = (
        f"{report.objects_listed} objects listed, {report.orphans_found} orphans; "
        f"**{action} {count}** ({format_bytes(report.bytes_freed)})"
    )
    return {
        "summary": dg.MetadataValue.md(summary),
        "objects_listed": dg.MetadataValue.int(report.objects_listed),
        "objects_referenced": dg.MetadataValue.int(report.objects_referenced),
        "orphans_found": dg.MetadataValue.int(report.orphans_found),
        "orphans_in_grace": dg.MetadataValue.int(report.orphans_in_grace),
        "orphans_in_progress": dg.MetadataValue.int(report.orphans_in_progress),
        "deleted": dg.MetadataValue.int(report.deleted),
        "bytes_freed": dg.MetadataValue.int(report.bytes_freed),
        "size_freed": dg.MetadataValue.text(format_bytes(report.bytes_freed)),
        "foreign_keys_ignored": dg.MetadataValue.int(report.foreign_keys_ignored),
        "examples": dg.MetadataValue.md("\n".join(f"- `{key}`" for key in report.examples) or "none"),
    }


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
