"""What content-aware crops (CROP_RENDITIONS) cost per artwork, and how well they place the subject.

    python -m benchmarks.engine --crops [--crop-renditions card:342x513,still:400x225,avatar:300x300]
                                        [--runs 7]

Per `tvdb/` corpus file: CPU seconds of `render_renditions` with the five sizes, and with the five
sizes plus the crops (the difference is what the crops add to an artwork: saliency map, window choice,
resampling and encoding of each crop), and of the window choice alone (saliency map plus every crop's
window). Medians over runs, interleaved so machine load falls on both alike. Placement: on generated
pictures with the subject off-centre (plain and noisy backgrounds), the share of the subject each
crop keeps, against a centre crop of the same window.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from PIL import Image

from benchmarks.common import cpu_seconds, median, table
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions
from tvdb_images.imaging.crop import choose_window, saliency_map
from tvdb_images.imaging.pixels import to_working
from tvdb_images.registry import parse_crop_renditions
from tvdb_images_tests.support.images.subjects import centre_window, kept, subject_picture

DEFAULT_CROPS = "card:342x513,still:400x225,avatar:300x300"
PLACEMENT_CASES = [
    ((1600, 900), (1300, 420), 150),
    ((1600, 900), (200, 450), 150),
    ((900, 1400), (450, 230), 140),
    ((1000, 1000), (820, 500), 120),
]


def run(files: dict[str, bytes], crops_text: str, runs: int) -> dict[str, Any]:
    crops = parse_crop_renditions(crops_text)
    plain, cropped = RenderSettings(), RenderSettings(crops=crops)
    limits = ValidationLimits()
    per_file: dict[str, dict[str, float]] = {}
    for name, data in files.items():
        render_renditions(data, cropped, limits)  # warm-up
        times: dict[str, list[float]] = {"sizes": [], "sizes_and_crops": [], "windows": []}
        with Image.open(BytesIO(data)) as image:
            image.load()
            working = to_working(image, 1)
        for run_index in range(runs):
            order = ("sizes", "sizes_and_crops") if run_index % 2 == 0 else ("sizes_and_crops", "sizes")
            for label in order:
                started = cpu_seconds()
                render_renditions(data, plain if label == "sizes" else cropped, limits)
                times[label].append(cpu_seconds() - started)
            started = cpu_seconds()
            content = saliency_map(working)
            for row in crops:
                assert row.box is not None
                choose_window(working, row.box, content)
            times["windows"].append(cpu_seconds() - started)
        per_file[name] = {label: round(median(values) * 1000, 2) for label, values in times.items()}
        per_file[name]["crops_add"] = round(per_file[name]["sizes_and_crops"] - per_file[name]["sizes"], 2)
    added = [row["crops_add"] for row in per_file.values()]
    windows = [row["windows"] for row in per_file.values()]
    return {
        "crops": crops_text,
        "runs": runs,
        "per_file_ms": per_file,
        "crops_add_ms_median": round(median(added), 2),
        "crops_add_ms_max": round(max(added), 2),
        "windows_ms_median": round(median(windows), 2),
        "windows_ms_max": round(max(windows), 2),
        "placement": placement(crops_text),
    }


def placement(crops_text: str) -> list[dict[str, Any]]:
    rows = []
    for size, centre, radius in PLACEMENT_CASES:
        for noisy in (False, True):
            picture = subject_picture(size, centre, radius, noisy=noisy)
            for row in parse_crop_renditions(crops_text):
                assert row.box is not None
                window = choose_window(picture.image, row.box)
                centred = centre_window(size, (window.width, window.height))
                rows.append(
                    {
                        "picture": f"{size[0]}x{size[1]} subject at {centre[0]},{centre[1]}",
                        "background": "noisy" if noisy else "plain",
                        "crop": row.name,
                        "kept": round(kept(picture.mask, window), 3),
                        "centre_kept": round(kept(picture.mask, centred), 3),
                    }
                )
    return rows


def report(result: dict[str, Any]) -> str:
    rows = [
        (name, t["sizes"], t["sizes_and_crops"], t["crops_add"], t["windows"])
        for name, t in result["per_file_ms"].items()
    ]
    out = [
        f"Crops {result['crops']}: CPU ms per artwork, median of {result['runs']} runs",
        table(["file", "5 sizes", "5 sizes + crops", "crops add", "windows only"], rows),
        f"crops add: median {result['crops_add_ms_median']} ms, max {result['crops_add_ms_max']} ms; "
        f"window choice: median {result['windows_ms_median']} ms, max {result['windows_ms_max']} ms",
        "",
        table(
            ["picture", "background", "crop", "subject kept", "centre crop keeps"],
            [tuple(row.values()) for row in result["placement"]],
        ),
    ]
    return "\n".join(out)
