"""Rendition engine on one core, side by side with plain Pillow, pyvips and the encoder's limit.

    python -m benchmarks.engine [--runs 7] [--method 4] [--sweep-methods 0,1,2,3,4,5,6] [--sweep-runs 3]
                                [--avif-qualities 40,50,60,70,80,85 [--webp-quality 85]]
                                [--avif-speeds 4,6,8,10 [--avif-quality 70] [--avif-runs 3]
                                 [--avif-engine-speeds 8]]
                                [--skip-comparison] [--watermark large,medium,small,thumbnail]
                                [--placeholders] [--profile]
    python -m benchmarks.engine --crops [--crop-renditions card:342x513,...] [--runs 7]  (benchmarks.crops)

Every contender makes the same five sizes of every `tvdb/` corpus file as WebP at quality 85 with
the same `method`, in one process, interleaved file by file and run by run so that machine load falls
on all of them alike. Times are CPU seconds of the process (all threads; pyvips is held to one
thread), the median over runs per file; totals add the per-file medians. Bytes and SSIM (against
the plain Pillow output, size by size) come from the outputs themselves.

The sweep repeats plain Pillow, the engine and the limit for each WebP method, with the bytes and
the SSIM of each encoded output against the pixels it was encoded from (what the method costs in
quality), which is the trade WEBP_METHOD chooses.

`--placeholders` measures only what the placeholders (ThumbHash, BlurHash, dominant colour) add: the
CPU spent inside `compute_placeholders` during each engine render, as a share of that render's CPU
(target under 3%), into results/engine_placeholders.json. `--profile` measures only where the
engine's CPU goes step by step next to the limit (benchmarks.engine_profile), into
results/engine_profile.json.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import avif_cost, contenders, crops, format_quality, watermark_cost
from benchmarks.common import cpu_seconds, machine, median, table, write_results
from benchmarks.engine_profile import profile, profile_report
from benchmarks.placeholder_cost import placeholder_cost, placeholder_report
from benchmarks.similarity import ssim
from tvdb_images.config import AVIF_QUALITY_DEFAULT
from tvdb_images.imaging import SIZE_BOXES
from tvdb_images_tests.support.corpus import CORPUS_DIR

SIZES = list(SIZE_BOXES)
TARGETS = {"vs_naive": 1.8, "vs_pyvips": 1.5, "of_limit": 0.85, "bytes_within": 0.02, "ssim": 0.98}


def corpus(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def time_contenders(
    files: dict[str, bytes], pipelines: dict[str, Callable[[str, bytes], list[bytes]]], runs: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[bytes]]]]:
    """CPU seconds per contender per file for every run, and each contender's outputs (first run)."""
    seconds: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in pipelines}
    outputs: dict[str, dict[str, list[bytes]]] = {name: {} for name in pipelines}
    order = list(pipelines)
    for name, data in files.items():  # warm-up: imports, codec tables, first allocations
        for pipeline in pipelines.values():
            pipeline(name, data)
    for run in range(runs):
        for name, data in files.items():
            shift = run % len(order)
            for contender in order[shift:] + order[:shift]:
                started = cpu_seconds()
                result = pipelines[contender](name, data)
                seconds[contender][name].append(cpu_seconds() - started)
                outputs[contender].setdefault(name, result)
    return seconds, outputs


def summarise_times(seconds: dict[str, dict[str, list[float]]], runs: int) -> dict[str, dict[str, Any]]:
    summary = {}
    for contender, per_file in seconds.items():
        run_totals = [sum(times[run] for times in per_file.values()) for run in range(runs)]
        summary[contender] = {
            "total_seconds": sum(median(times) for times in per_file.values()),
            "run_totals": [round(t, 4) for t in run_totals],
            "run_total_spread": round(statistics.pstdev(run_totals) / median(run_totals), 4),
            "per_file_ms": {name: round(median(times) * 1000, 2) for name, times in per_file.items()},
        }
    return summary


def similarity(
    outputs: dict[str, dict[str, list[bytes]]], reference: str, contender: str
) -> dict[str, dict[str, float | None]]:
    """SSIM per size per file of `contender`'s outputs against `reference`'s."""
    per_size: dict[str, dict[str, float | None]] = {size: {} for size in SIZES}
    for name, ours in outputs[contender].items():
        theirs = outputs[reference][name]
        for size, a, b in zip(SIZES, ours, theirs, strict=True):
            per_size[size][name] = 1.0 if a == b else ssim(a, b)
    return per_size


def ssim_summary(per_size: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float]]:
    summary = {}
    for size, values in per_size.items():
        known = [v for v in values.values() if v is not None]
        summary[size] = {"min": round(min(known), 4), "mean": round(statistics.fmean(known), 4)}
    return summary


def bytes_by_size(outputs: dict[str, list[bytes]]) -> dict[str, int]:
    totals = dict.fromkeys(SIZES, 0)
    for per_size in outputs.values():
        for size, data in zip(SIZES, per_size, strict=True):
            totals[size] += len(data)
    return totals


def main_comparison(files: dict[str, bytes], method: int, runs: int) -> dict[str, Any]:
    encoder = contenders.Encoder(method=method)
    prepared = {name: contenders.prepare_limit(data) for name, data in files.items()}
    naive = contenders.naive_pillow(encoder)
    per_size = contenders.pyvips_per_size(encoder)
    once = contenders.pyvips_once(encoder)
    engine = contenders.engine(encoder)
    pipelines: dict[str, Callable[[str, bytes], list[bytes]]] = {
        "naive_pillow": lambda _name, data: naive(data),
        "pyvips_per_size": lambda _name, data: per_size(data),
        "pyvips_once": lambda _name, data: once(data),
        "engine": lambda _name, data: engine(data),
        "limit": lambda name, _data: contenders.limit(encoder, prepared[name]),
    }
    seconds, outputs = time_contenders(files, pipelines, runs)
    times = summarise_times(seconds, runs)
    engine_total = times["engine"]["total_seconds"]
    fastest_pyvips = min(times["pyvips_per_size"]["total_seconds"], times["pyvips_once"]["total_seconds"])
    naive_bytes = bytes_by_size(outputs["naive_pillow"])
    engine_bytes = bytes_by_size(outputs["engine"])
    engine_ssim = similarity(outputs, "naive_pillow", "engine")
    return {
        "method": method,
        "quality": encoder.quality,
        "runs": runs,
        "files": list(files),
        "seconds": times,
        "ratios": {
            "engine_vs_naive": times["naive_pillow"]["total_seconds"] / engine_total,
            "engine_vs_pyvips_per_size": times["pyvips_per_size"]["total_seconds"] / engine_total,
            "engine_vs_pyvips_once": times["pyvips_once"]["total_seconds"] / engine_total,
            "engine_vs_fastest_pyvips": fastest_pyvips / engine_total,
            "engine_of_limit": times["limit"]["total_seconds"] / engine_total,
            "naive_vs_limit": times["naive_pillow"]["total_seconds"] / times["limit"]["total_seconds"],
        },
        "bytes": {
            "naive_pillow": naive_bytes,
            "engine": engine_bytes,
            "pyvips_per_size": bytes_by_size(outputs["pyvips_per_size"]),
            "engine_vs_naive": sum(engine_bytes.values()) / sum(naive_bytes.values()),
            "engine_vs_naive_by_size": {s: engine_bytes[s] / naive_bytes[s] for s in SIZES},
        },
        "ssim_vs_naive": {
            "engine": ssim_summary(engine_ssim),
            "engine_per_file": engine_ssim,
            "pyvips_per_size": ssim_summary(similarity(outputs, "naive_pillow", "pyvips_per_size")),
        },
    }


def sweep(files: dict[str, bytes], methods: list[int], runs: int) -> list[dict[str, Any]]:
    rows = []
    prepared = {name: contenders.prepare_limit(data) for name, data in files.items()}
    for method in methods:
        encoder = contenders.Encoder(method=method)
        naive, engine = contenders.naive_pillow(encoder), contenders.engine(encoder)
        pipelines: dict[str, Callable[[str, bytes], list[bytes]]] = {
            "naive_pillow": lambda _name, data, f=naive: f(data),
            "engine": lambda _name, data, f=engine: f(data),
            "limit": lambda name, _data, e=encoder: contenders.limit(e, prepared[name]),
        }
        seconds, outputs = time_contenders(files, pipelines, runs)
        times = summarise_times(seconds, runs)
        quality = [
            ssim(encoded, pixels)
            for name in files
            for encoded, pixels in zip(outputs["limit"][name], prepared[name].pixels, strict=True)
        ]
        naive_s, engine_s, limit_s = (times[c]["total_seconds"] for c in ("naive_pillow", "engine", "limit"))
        rows.append(
            {
                "method": method,
                "naive_seconds": naive_s,
                "engine_seconds": engine_s,
                "limit_seconds": limit_s,
                "engine_vs_naive": naive_s / engine_s,
                "naive_vs_limit": naive_s / limit_s,
                "engine_of_limit": limit_s / engine_s,
                "engine_bytes": sum(bytes_by_size(outputs["engine"]).values()),
                "naive_bytes": sum(bytes_by_size(outputs["naive_pillow"]).values()),
                "quality_ssim": statistics.fmean(q for q in quality if q is not None),
            }
        )
        print(f"  method {method}: engine {engine_s:.3f} s, {rows[-1]['engine_bytes']:,} bytes", flush=True)
    return rows


def report(result: dict[str, Any], sweep_rows: list[dict[str, Any]]) -> str:
    times, ratios = result["seconds"], result["ratios"]
    names = ["naive_pillow", "pyvips_per_size", "pyvips_once", "engine", "limit"]
    rows = [
        [file]
        + [times[c]["per_file_ms"][file] for c in names]
        + [times["naive_pillow"]["per_file_ms"][file] / times["engine"]["per_file_ms"][file]]
        for file in result["files"]
    ]
    rows.append(["**total (s)**"] + [times[c]["total_seconds"] for c in names] + [ratios["engine_vs_naive"]])
    out = [
        f"## Engine, one core: CPU ms per file (median of {result['runs']} runs), WebP q{result['quality']}"
        f" method {result['method']}",
        table(["file", *names, "naive/engine"], rows),
        "",
        table(
            ["figure", "measured", "target"],
            [
                ["engine vs naive Pillow", f"{ratios['engine_vs_naive']:.2f}x", ">= 1.8x"],
                ["engine vs pyvips, per size", f"{ratios['engine_vs_pyvips_per_size']:.2f}x", ">= 1.5x"],
                ["engine vs pyvips, decode once", f"{ratios['engine_vs_pyvips_once']:.2f}x", ">= 1.5x"],
                ["engine, share of the limit", f"{ratios['engine_of_limit']:.1%}", ">= 85%"],
                ["naive Pillow vs the limit (ceiling)", f"{ratios['naive_vs_limit']:.2f}x", ""],
                ["engine bytes vs naive", f"{result['bytes']['engine_vs_naive'] - 1:+.2%}", "within 2%"],
            ],
        ),
        "",
        "SSIM against the naive Pillow output (min / mean over files):",
        table(
            ["size", "engine", "pyvips per size", "engine bytes vs naive"],
            [
                [
                    size,
                    "{min:.4f} / {mean:.4f}".format(**result["ssim_vs_naive"]["engine"][size]),
                    "{min:.4f} / {mean:.4f}".format(**result["ssim_vs_naive"]["pyvips_per_size"][size]),
                    f"{result['bytes']['engine_vs_naive_by_size'][size] - 1:+.2%}",
                ]
                for size in SIZES
            ],
        ),
    ]
    if sweep_rows:
        reference = next((r for r in sweep_rows if r["method"] == 4), sweep_rows[0])
        out += [
            "",
            "## WebP method sweep (CPU s for the corpus; bytes of all renditions; quality = SSIM of each"
            " output against its own input pixels)",
            table(
                [
                    "method",
                    "naive",
                    "engine",
                    "limit",
                    "naive/engine",
                    "naive/limit",
                    "engine % limit",
                    "bytes",
                    "bytes vs m4",
                    "quality",
                ],
                [
                    [
                        r["method"],
                        r["naive_seconds"],
                        r["engine_seconds"],
                        r["limit_seconds"],
                        r["engine_vs_naive"],
                        r["naive_vs_limit"],
                        f"{r['engine_of_limit']:.1%}",
                        f"{r['engine_bytes']:,}",
                        f"{r['engine_bytes'] / reference['engine_bytes'] - 1:+.1%}",
                        f"{r['quality_ssim']:.4f}",
                    ]
                    for r in sweep_rows
                ],
            ),
        ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--method", type=int, default=4)
    parser.add_argument("--sweep-methods", default="0,1,2,3,4,5,6", help="comma-separated; empty to skip")
    parser.add_argument("--sweep-runs", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR / "tvdb")
    parser.add_argument(
        "--avif-qualities", default="", help="comma-separated AVIF qualities to match against WebP"
    )
    parser.add_argument("--webp-quality", type=int, default=85, help="the WebP quality to match")
    parser.add_argument(
        "--avif-speeds", default="", help="comma-separated AVIF speeds: AVIF's cost per artwork next to WebP"
    )
    parser.add_argument("--avif-quality", type=int, default=AVIF_QUALITY_DEFAULT, help="for --avif-speeds")
    parser.add_argument("--avif-runs", type=int, default=3, help="for --avif-speeds")
    parser.add_argument("--avif-engine-speeds", default="", help="the engine part's speeds (default: all)")
    parser.add_argument(
        "--skip-comparison",
        action="store_true",
        help="only the AVIF parts and/or the watermark cost (format_quality, avif_cost, watermark.json)",
    )
    parser.add_argument(
        "--watermark", default="", help="comma-separated sizes: the cost of a watermark on them per artwork"
    )
    parser.add_argument(
        "--placeholders", action="store_true", help="only the placeholders' share of the engine's CPU"
    )
    parser.add_argument(
        "--profile", action="store_true", help="only the engine's CPU step by step, next to the limit"
    )
    parser.add_argument(
        "--crops", action="store_true", help="only the crops' cost per artwork (results/crops.json)"
    )
    parser.add_argument("--crop-renditions", default=crops.DEFAULT_CROPS, help="CROP_RENDITIONS to time")
    args = parser.parse_args()

    files = corpus(args.corpus)
    context = machine()
    print(f"{len(files)} files from {args.corpus}; load average {context['load_average']}", flush=True)
    if args.crops:
        measured = crops.run(files, args.crop_renditions, args.runs)
        print(crops.report(measured))
        after = {"load_average_after": machine()["load_average"]}
        print(f"wrote {write_results('crops', {'machine': context | after, **measured})}")
        return
    if args.placeholders:
        cost = placeholder_cost(files, args.runs)
        print(placeholder_report(cost))
        after = {"load_average_after": machine()["load_average"]}
        print(f"wrote {write_results('engine_placeholders', {'machine': context | after, **cost})}")
        return
    if args.profile:
        measured = profile(files, args.runs)
        print(profile_report(measured))
        after = {"load_average_after": machine()["load_average"]}
        print(f"wrote {write_results('engine_profile', {'machine': context | after, **measured})}")
        return
    qualities = [int(q) for q in args.avif_qualities.split(",") if q.strip()]
    if qualities:
        matched = format_quality.sweep(files, args.webp_quality, qualities)
        print(format_quality.report(matched))
        after = {"load_average_after": machine()["load_average"]}
        path = write_results("format_quality", {"machine": context | after, **matched})
        print(f"wrote {path}")
    marked_sizes = [size.strip() for size in args.watermark.split(",") if size.strip()]
    if marked_sizes:
        cost = watermark_cost.measure(files, marked_sizes, args.method, args.runs)
        print(watermark_cost.report(cost))
        after = {"load_average_after": machine()["load_average"]}
        print(f"wrote {write_results('watermark', {'machine': context | after, **cost})}")
    speeds = [int(s) for s in args.avif_speeds.split(",") if s.strip()]
    if speeds:
        cost = avif_cost.run(
            files,
            speeds,
            avif_quality=args.avif_quality,
            webp_quality=args.webp_quality,
            runs=args.avif_runs,
            engine_speeds=[int(s) for s in args.avif_engine_speeds.split(",") if s.strip()] or None,
        )
        print(avif_cost.report(cost))
        after = {"load_average_after": machine()["load_average"]}
        path = write_results("avif_cost", {"machine": context | after, **cost})
        print(f"wrote {path}")
    if args.skip_comparison:
        return
    result = main_comparison(files, args.method, args.runs)
    methods = [int(m) for m in args.sweep_methods.split(",") if m.strip()]
    sweep_rows = sweep(files, methods, args.sweep_runs) if methods else []
    context["load_average_after"] = machine()["load_average"]
    print(report(result, sweep_rows))
    path = write_results("engine", {"machine": context, "targets": TARGETS, **result, "sweep": sweep_rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
