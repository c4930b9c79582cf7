"""Where the engine's CPU goes, next to the limit (`python -m benchmarks.engine --profile`).

Each step `render_renditions` calls through the render module (decode with the colour and orientation
step, resample, encode, placeholders, perceptual hash) is wrapped in a CPU timer while the engine
renders the corpus as the comparison does (WebP q85, every size); what no timer covers (validation,
planning, Python) is "other". The limit is timed alongside, interleaved file by file. Since the
engine must encode what the limit encodes and, to keep `thumbnail()`'s pixels, resample and decode
as it does, `limit / (encode + resample + decode)` bounds its share of the limit without new pixels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import contenders
from benchmarks.common import cpu_seconds, table
from tvdb_images.imaging import render, resize

_STEPS = {
    "decode": ("decode", "to_working"),
    "resample": ("resample",),
    "encode": ("encode",),
    "placeholders": ("compute_placeholders",),
    "perceptual_hash": ("perceptual_hash",),
}


@contextmanager
def _timed_steps() -> Iterator[dict[str, float]]:
    spent: dict[str, float] = defaultdict(float)
    originals: dict[str, Callable[..., Any]] = {}

    def wrap(step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = cpu_seconds()
            try:
                return function(*args, **kwargs)
            finally:
                spent[step] += cpu_seconds() - started

        return timed

    for step, names in _STEPS.items():
        for name in names:
            originals[name] = getattr(render, name)
            setattr(render, name, wrap(step, originals[name]))
    cascade_resized = resize.Cascade.resized
    resize.Cascade.resized = wrap("resample", cascade_resized)  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(render, name, function)
        resize.Cascade.resized = cascade_resized  # type: ignore[method-assign]


def profile(files: dict[str, bytes], runs: int) -> dict[str, Any]:
    encoder = contenders.Encoder()
    engine = contenders.engine(encoder)
    prepared = {name: contenders.prepare_limit(data) for name, data in files.items()}
    for name, data in files.items():  # warm-up
        engine(data)
        contenders.limit(encoder, prepared[name])
    engine_total = limit_total = 0.0
    with _timed_steps() as spent:
        for _ in range(runs):
            for name, data in files.items():
                started = cpu_seconds()
                engine(data)
                engine_total += cpu_seconds() - started
                started = cpu_seconds()
                contenders.limit(encoder, prepared[name])
                limit_total += cpu_seconds() - started
        steps = {step: spent[step] / runs for step in _STEPS}
    engine_s, limit_s = engine_total / runs, limit_total / runs
    steps["other"] = engine_s - sum(steps.values())
    pixels_bound = steps["encode"] + steps["resample"] + steps["decode"]
    return {
        "runs": runs,
        "engine_seconds": engine_s,
        "limit_seconds": limit_s,
        "engine_of_limit": limit_s / engine_s,
        "steps_seconds": steps,
        "ceiling_with_the_same_pixels": limit_s / pixels_bound,
    }


def profile_report(result: dict[str, Any]) -> str:
    engine_s = result["engine_seconds"]
    rows = [[step, seconds, f"{seconds / engine_s:.1%}"] for step, seconds in result["steps_seconds"].items()]
    rows.append(["**engine**", engine_s, "100%"])
    rows.append(["limit", result["limit_seconds"], f"{result['limit_seconds'] / engine_s:.1%}"])
    return "\n".join(
        [
            f"## Where the engine's CPU goes (CPU s per pass over the corpus, mean of {result['runs']} runs)",
            table(["step", "seconds", "of the engine"], rows),
            f"\nengine {result['engine_of_limit']:.1%} of the limit; with the same pixels (encode + resample"
            f" + decode) at most {result['ceiling_with_the_same_pixels']:.1%}",
        ]
    )
