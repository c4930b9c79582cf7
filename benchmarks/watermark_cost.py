"""What a watermark costs per artwork: the engine with and without one, on the same files.

Run from `python -m benchmarks.engine --watermark large,medium,small,thumbnail [--runs 7]` (with
`--skip-comparison` to run this part alone). A 400x200 RGBA mark with a soft alpha gradient is placed
bottom-right at 20% of each listed size's width, opacity 0.5; both variants render every `tvdb/`
corpus file to all five sizes as WebP (quality 85, the given `method`), interleaved file by file and run
by run so machine load falls on both alike. Times are CPU seconds of the process, the median over runs
per file; the cost is the difference of the per-file medians, summed and divided by the file count.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks.common import cpu_seconds, median
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions
from tvdb_images.imaging.watermark import load_watermark


def _mark(folder: Path) -> Path:
    mark = Image.new("RGBA", (400, 200), (255, 255, 255, 0))
    for x in range(400):
        for y in range(200):
            mark.putpixel((x, y), (255, 255 - x // 2, 40, min(255, (x + y) // 2)))
    path = folder / "watermark.png"
    mark.save(path, "PNG")
    return path


def measure(files: dict[str, bytes], sizes: list[str], method: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        mark = load_watermark(_mark(Path(folder)), sizes=tuple(sizes), opacity=0.5, scale=0.2)
    variants = {
        "plain": RenderSettings(webp_method=method),
        "watermarked": RenderSettings(webp_method=method, watermark=mark),
    }
    limits = ValidationLimits()
    seconds: dict[str, dict[str, list[float]]] = {name: {f: [] for f in files} for name in variants}
    for data in files.values():  # warm-up, and the per-size watermark cache filled once
        for settings in variants.values():
            render_renditions(data, settings, limits)
    for run in range(runs):
        order = list(variants) if run % 2 == 0 else list(reversed(variants))
        for name, data in files.items():
            for variant in order:
                started = cpu_seconds()
                render_renditions(data, variants[variant], limits)
                seconds[variant][name].append(cpu_seconds() - started)
    per_file = {name: {variant: median(seconds[variant][name]) for variant in variants} for name in files}
    plain = sum(row["plain"] for row in per_file.values())
    marked = sum(row["watermarked"] for row in per_file.values())
    return {
        "sizes": sizes,
        "runs": runs,
        "method": method,
        "files": len(files),
        "plain_cpu_seconds_per_artwork": round(plain / len(files), 4),
        "watermarked_cpu_seconds_per_artwork": round(marked / len(files), 4),
        "cost_ms_per_artwork": round((marked - plain) / len(files) * 1000, 2),
        "cost_fraction": round((marked - plain) / plain, 4),
        "per_file": {
            name: {variant: round(value, 4) for variant, value in row.items()}
            for name, row in per_file.items()
        },
    }


def report(result: dict[str, Any]) -> str:
    return (
        f"watermark on {','.join(result['sizes'])}: {result['files']} files, "
        f"median of {result['runs']} runs, WebP method {result['method']}\n"
        f"  plain       {result['plain_cpu_seconds_per_artwork'] * 1000:.1f} ms CPU per artwork\n"
        f"  watermarked {result['watermarked_cpu_seconds_per_artwork'] * 1000:.1f} ms CPU per artwork\n"
        f"  cost        {result['cost_ms_per_artwork']:+.2f} ms per artwork ({result['cost_fraction']:+.1%})"
    )
