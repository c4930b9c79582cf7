"""HTTP load from `wrk`, as the serving and soak benchmarks apply it: two threads, a request list that
`wrk/rotate.lua` rotates over, and its figures read back from the JSON line the script prints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.common import median

LUA = Path(__file__).resolve().parent / "wrk" / "rotate.lua"
ERRORS = ("errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout")


def run_wrk(base: str, requests: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run: rotate.lua's figures, plus requests and MB per second and all errors summed."""
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            base,
            "--",
            str(requests),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["requests_per_second"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["mb_per_second"] = figures["bytes"] / (figures["duration_us"] / 1e6) / 1e6
    figures["errors"] = sum(figures[name] for name in ERRORS)
    return figures


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per path, the median of its runs (errors: the total)."""
    return {
        name: {
            "requests_per_second": median([r["requests_per_second"] for r in results]),
            "mb_per_second": median([r["mb_per_second"] for r in results]),
            "p50_ms": median([r["p50_us"] for r in results]) / 1000,
            "p99_ms": median([r["p99_us"] for r in results]) / 1000,
            "max_ms": median([r["max_us"] for r in results]) / 1000,
            "errors": sum(r["errors"] for r in results),
        }
        for name, results in runs.items()
    }
