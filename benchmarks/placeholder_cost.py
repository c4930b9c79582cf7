"""What the placeholders add to the engine's CPU per artwork (`python -m benchmarks.engine --placeholders`).

Each corpus file is rendered by the engine as the pipeline renders it (WebP q85, every size) with
`compute_placeholders` wrapped in a CPU timer, so the figure is the time spent inside the very calls
the render makes, on the very pixels it hands over, as a share of that render's CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import cpu_seconds, median, table
from tvdb_images.imaging import RenderSettings, ValidationLimits, render, render_renditions

TARGET_SHARE = 0.03


@contextmanager
def _timed_placeholders() -> Iterator[list[float]]:
    spent: list[float] = []
    original = render.compute_placeholders

    def timed(pixels):  # type: ignore[no-untyped-def]
        started = cpu_seconds()
        try:
            return original(pixels)
        finally:
            spent.append(cpu_seconds() - started)

    render.compute_placeholders = timed  # type: ignore[assignment]
    try:
        yield spent
    finally:
        render.compute_placeholders = original  # type: ignore[assignment]


def placeholder_cost(files: dict[str, bytes], runs: int) -> dict[str, Any]:
    settings, limits = RenderSettings(), ValidationLimits()
    per_file: dict[str, dict[str, float]] = {}
    with _timed_placeholders() as spent:
        for data in files.values():  # warm-up
            render_renditions(data, settings, limits)
        for name, data in files.items():
            totals, inside = [], []
            for _ in range(runs):
                spent.clear()
                started = cpu_seconds()
                render_renditions(data, settings, limits)
                totals.append(cpu_seconds() - started)
                inside.append(sum(spent))
            per_file[name] = {"render_ms": median(totals) * 1000, "placeholders_ms": median(inside) * 1000}
    render_total = sum(f["render_ms"] for f in per_file.values())
    placeholders_total = sum(f["placeholders_ms"] for f in per_file.values())
    return {
        "runs": runs,
        "target_share": TARGET_SHARE,
        "per_file": per_file,
        "render_ms_total": render_total,
        "placeholders_ms_total": placeholders_total,
        "share": placeholders_total / render_total,
        "largest_share": max(f["placeholders_ms"] / f["render_ms"] for f in per_file.values()),
    }


def placeholder_report(cost: dict[str, Any]) -> str:
    rows = [
        [name, f["render_ms"], f["placeholders_ms"], f"{f['placeholders_ms'] / f['render_ms']:.2%}"]
        for name, f in cost["per_file"].items()
    ]
    rows.append(["**total**", cost["render_ms_total"], cost["placeholders_ms_total"], f"{cost['share']:.2%}"])
    return "\n".join(
        [
            f"## Placeholders' share of the engine's CPU (median of {cost['runs']} runs per file)",
            table(["file", "render ms", "placeholders ms", "share"], rows),
            f"\nshare {cost['share']:.2%} (largest per file {cost['largest_share']:.2%}), target under "
            f"{cost['target_share']:.0%}",
        ]
    )
