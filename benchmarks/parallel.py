"""The engine on both cores: a thread pool (what the pipeline uses) and a process pool, against one core.

    python -m benchmarks.parallel [--copies 6] [--runs 5]

The work is the `tvdb/` corpus repeated `copies` times, rendered with `render_renditions` through the
pipeline's own `bounded_map` with 1 and with 2 workers (and a 2-process pool for comparison), the
configurations alternating run by run. Throughput is images per wall-clock second (median over
runs); the speed-up is 2-worker over 1-worker throughput. Because other programs may be using the
cores, each run also records how many cores the whole machine kept busy and how much CPU this
process got: a speed-up below 2 with the machine at 2.0 busy cores is contention, not the engine.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import machine, median, table, write_results
from benchmarks.engine import corpus
from benchmarks.machine_load import machine_busy_cores, raise_priority, sample
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions
from tvdb_images.pipeline.concurrency import bounded_map
from tvdb_images_tests.support.corpus import CORPUS_DIR

LIMITS = ValidationLimits()


def render_count(task: tuple[bytes, RenderSettings]) -> int:
    data, settings = task
    return len(render_renditions(data, settings, LIMITS).renditions)


def run_threads(tasks: list[tuple[bytes, RenderSettings]], workers: int) -> None:
    for _task, _result in bounded_map(render_count, tasks, workers=workers):
        pass


def run_processes(tasks: list[tuple[bytes, RenderSettings]], pool: ProcessPoolExecutor) -> None:
    list(pool.map(render_count, tasks, chunksize=1))


def measure(label: str, work, images: int) -> dict[str, Any]:
    before, cpu, started = sample(), time.process_time(), time.perf_counter()
    work()
    wall = time.perf_counter() - started
    after = sample()
    return {
        "config": label,
        "wall_seconds": wall,
        "images_per_second": images / wall,
        "process_cpu_seconds": time.process_time() - cpu,  # threads only: pool workers are other processes
        "machine_busy_cores": machine_busy_cores(before, after, wall),
    }


def gil_held_fraction(tasks: list[tuple[bytes, RenderSettings]]) -> float:
    """Share of one thread's render CPU time spent outside the C calls that release the GIL.

    Decoding (`ImageFile.load`), resampling (`Image.resize`), colour transforms and WebP encoding
    (`_webp.WebPEncode`) run with the GIL released; whatever remains (validation, planning, Python
    glue) is what two threads must take turns at. Amdahl's law turns it into the best speed-up two
    free cores can give, a figure other programs' load does not move.
    """
    from PIL import Image, ImageCms, ImageFile, WebPImagePlugin

    released = 0.0
    originals = []

    def timed(owner, name: str) -> None:
        function = getattr(owner, name)
        originals.append((owner, name, function))

        def wrapper(*args, **kwargs):
            nonlocal released
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                released += time.thread_time() - started

        setattr(owner, name, wrapper)

    timed(ImageFile.ImageFile, "load")
    timed(Image.Image, "resize")
    timed(ImageCms, "applyTransform")
    timed(WebPImagePlugin._webp, "WebPEncode")
    try:
        started = time.thread_time()
        for task in tasks:
            render_count(task)
        total = time.thread_time() - started
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)
    return (total - released) / total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--method", type=int, default=4)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR / "tvdb")
    parser.add_argument("--priority", type=int, default=10, help="lower the niceness by this much (as root)")
    args = parser.parse_args()
    niceness = raise_priority(args.priority)

    settings = RenderSettings(webp_method=args.method)
    files = corpus(args.corpus)
    tasks = [(data, settings) for _ in range(args.copies) for data in files.values()]
    context = machine() | {"niceness": niceness}
    print(
        f"{len(tasks)} renders per run, {args.runs} runs; load average {context['load_average']}", flush=True
    )
    run_threads(tasks[: len(files)], 2)  # warm-up
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=2) as pool:
        run_processes(tasks[:4], pool)  # start the workers before timing
        for run in range(args.runs):
            configs = [
                ("1 thread", lambda: run_threads(tasks, 1)),
                ("2 threads", lambda: run_threads(tasks, 2)),
                ("2 processes", lambda: run_processes(tasks, pool)),
            ]
            for label, work in configs[run % 3 :] + configs[: run % 3]:
                result = measure(label, work, len(tasks))
                result["run"] = run
                runs.append(result)
                print(
                    f"  run {run} {label:11s} {result['images_per_second']:6.2f} img/s,"
                    f" machine busy {result['machine_busy_cores']:.2f} cores",
                    flush=True,
                )
    summary = {}
    for label in ("1 thread", "2 threads", "2 processes"):
        mine = [r for r in runs if r["config"] == label]
        summary[label] = {
            "images_per_second": median([r["images_per_second"] for r in mine]),
            "best_images_per_second": max(r["images_per_second"] for r in mine),
            "machine_busy_cores": median([r["machine_busy_cores"] for r in mine]),
            # Pool workers are other processes: this process's CPU says nothing about them.
            "cpu_seconds_per_image": None
            if label == "2 processes"
            else median([r["process_cpu_seconds"] for r in mine]) / len(tasks),
        }
    one = summary["1 thread"]["images_per_second"]
    speedups = {
        "threads": summary["2 threads"]["images_per_second"] / one,
        "processes": summary["2 processes"]["images_per_second"] / one,
        "threads_best_runs": summary["2 threads"]["best_images_per_second"]
        / summary["1 thread"]["best_images_per_second"],
    }
    held = gil_held_fraction(tasks[: len(files)])
    amdahl = 1 / (held + (1 - held) / 2)
    context["load_average_after"] = machine()["load_average"]
    print(
        table(
            [
                "config",
                "images/s (median)",
                "best",
                "speed-up",
                "machine busy cores",
                "CPU s/image (this process)",
            ],
            [
                [
                    label,
                    values["images_per_second"],
                    values["best_images_per_second"],
                    f"{values['images_per_second'] / one:.2f}x",
                    values["machine_busy_cores"],
                    values["cpu_seconds_per_image"] or "(in workers)",
                ]
                for label, values in summary.items()
            ],
        )
    )
    print(
        f"\nthread pool speed-up {speedups['threads']:.2f}x median,"
        f" {speedups['threads_best_runs']:.2f}x best runs"
        f" (target >= 1.8x); GIL held {held:.1%} of render CPU -> at most {amdahl:.2f}x on two free cores"
    )
    path = write_results(
        "parallel",
        {
            "machine": context,
            "method": args.method,
            "images_per_run": len(tasks),
            "summary": summary,
            "speedups": speedups,
            "gil_held_fraction": held,
            "amdahl_two_core_speedup": amdahl,
            "runs": runs,
            "target_speedup": 1.8,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
