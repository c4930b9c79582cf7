"""What AVIF costs per artwork next to WebP, and what each AVIF speed buys (AVIF_SPEED).

Run from `python -m benchmarks.engine --avif-speeds 4,6,8,10 --skip-comparison` (`--avif-quality`,
default IMAGE_QUALITY_AVIF's, `--webp-quality`, `--runs`). Two parts, on every `tvdb/` corpus file:

1. Encoders alone: every distinct size prepared as the engine prepares it, encoded as WebP (quality,
   method 4) and as AVIF at each speed; CPU seconds per artwork (all its sizes; median over runs),
   bytes, and SSIM of each output against the pixels it was encoded from.
2. The engine: `render_renditions` per artwork with IMAGE_FORMATS=webp and with webp,avif at each
   of `--avif-engine-speeds` (default: every speed; one decode and resize for both), CPU seconds per
   artwork (median over runs). The difference is what adding AVIF costs a sync.

CPU seconds are the process's, all threads (libavif may use several): load from other programs moves
them less than wall time, but does move them on a busy machine. Bytes and SSIM do not depend on load.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from benchmarks import contenders
from benchmarks.common import cpu_seconds, median, table
from benchmarks.similarity import ssim
from tvdb_images.config import AVIF_QUALITY_DEFAULT
from tvdb_images.imaging import ValidationLimits, render_renditions
from tvdb_images.imaging.encode import encode
from tvdb_images.imaging.render import RenderSettings

ENCODER_HEADERS = (
    "encoding",
    "CPU ms/artwork",
    "vs WebP",
    "bytes",
    "vs WebP",
    "SSIM mean",
    "SSIM min",
    "smaller than WebP",
)
LIMITS = ValidationLimits(max_bytes=100_000_000, max_pixels=100_000_000, max_frames=100)


def run(
    files: dict[str, bytes],
    speeds: list[int],
    *,
    avif_quality: int = AVIF_QUALITY_DEFAULT,
    webp_quality: int = 85,
    runs: int = 3,
    engine_speeds: list[int] | None = None,
) -> dict[str, Any]:
    webp = RenderSettings(format="webp", quality=webp_quality)
    avifs = {speed: RenderSettings(format="avif", quality=avif_quality, avif_speed=speed) for speed in speeds}
    encoders = {"webp": webp} | {f"avif_s{speed}": settings for speed, settings in avifs.items()}
    encoded = _encoders(files, encoders, runs)
    in_engine = {
        speed: avifs.get(speed) or replace(webp, format="avif", quality=avif_quality, avif_speed=speed)
        for speed in engine_speeds or speeds
    }
    engines = {"webp": (webp,)} | {f"webp+avif_s{speed}": (webp, avif) for speed, avif in in_engine.items()}
    rendered = _engine(files, engines, runs)
    return {
        "artworks": len(files),
        "webp_quality": webp_quality,
        "avif_quality": avif_quality,
        "runs": runs,
        "encoders": encoded,
        "engine": rendered,
    }


def _encoders(files: dict[str, bytes], encoders: dict[str, RenderSettings], runs: int) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in encoders}  # per artwork: median over runs
    sizes: dict[str, list[int]] = {name: [] for name in encoders}
    similarity: dict[str, list[float]] = {name: [] for name in encoders}
    for name, data in files.items():
        prepared = contenders.prepare_limit(data)
        for label, settings in encoders.items():
            times = []
            for run in range(runs + 1):  # the first run warms the codec up and is not counted
                started = cpu_seconds()
                outputs = [encode(pixels, settings) for pixels in prepared.pixels]
                if run:
                    times.append(cpu_seconds() - started)
            seconds[label].append(median(times))
            sizes[label].extend(len(output) for output in outputs)
            pairs = zip(outputs, prepared.pixels, strict=True)
            similarity[label].extend(v for o, p in pairs if (v := ssim(o, p)) is not None)
        print(f"  encoders: {name}", flush=True)
    webp_seconds, webp_bytes = sum(seconds["webp"]), sum(sizes["webp"])
    return {
        label: {
            "cpu_seconds_per_artwork": sum(seconds[label]) / len(files),
            "cpu_vs_webp": sum(seconds[label]) / webp_seconds,
            "bytes": sum(sizes[label]),
            "bytes_vs_webp": sum(sizes[label]) / webp_bytes,
            "ssim_mean": statistics.fmean(similarity[label]),
            "ssim_min": min(similarity[label]),
            "outputs_smaller_than_webp": sum(a < w for a, w in zip(sizes[label], sizes["webp"], strict=True)),
            "outputs": len(sizes[label]),
        }
        for label in encoders
    }


def _engine(
    files: dict[str, bytes], engines: dict[str, tuple[RenderSettings, ...]], runs: int
) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    order = list(engines)
    for name, data in files.items():
        times: dict[str, list[float]] = {label: [] for label in engines}
        for run in range(runs + 1):
            shift = run % len(order)
            for label in order[shift:] + order[:shift]:  # interleaved: load falls on all alike
                started = cpu_seconds()
                render_renditions(data, engines[label], LIMITS)
                if run:
                    times[label].append(cpu_seconds() - started)
        for label in engines:
            seconds[label].append(median(times[label]))
        print(f"  engine: {name}", flush=True)
    webp = sum(seconds["webp"])
    return {
        label: {
            "cpu_seconds_per_artwork": sum(seconds[label]) / len(files),
            "cpu_vs_webp_only": sum(seconds[label]) / webp,
        }
        for label in engines
    }


def report(result: dict[str, Any]) -> str:
    encoders = result["encoders"]
    rows = [
        [
            label,
            f"{row['cpu_seconds_per_artwork'] * 1000:.0f}",
            f"{row['cpu_vs_webp']:.2f}",
            row["bytes"],
            f"{row['bytes_vs_webp']:.3f}",
            f"{row['ssim_mean']:.4f}",
            f"{row['ssim_min']:.4f}",
            f"{row['outputs_smaller_than_webp']} of {row['outputs']}",
        ]
        for label, row in encoders.items()
    ]
    engine_rows = [
        [label, f"{row['cpu_seconds_per_artwork'] * 1000:.0f}", f"{row['cpu_vs_webp_only']:.2f}"]
        for label, row in result["engine"].items()
    ]
    return (
        f"## Encoders per artwork (WebP q{result['webp_quality']} m4, AVIF q{result['avif_quality']};"
        f" {result['artworks']} artworks, median of {result['runs']} runs)\n\n"
        + table(ENCODER_HEADERS, rows)
        + "\n\n## The engine per artwork (render_renditions: decode, resize, encode every format)\n\n"
        + table(["IMAGE_FORMATS", "CPU ms/artwork", "vs webp alone"], engine_rows)
    )
