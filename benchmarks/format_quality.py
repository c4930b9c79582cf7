"""Which AVIF quality looks like WebP at IMAGE_QUALITY: SSIM against the source and bytes, per quality.

Run from `python -m benchmarks.engine --avif-qualities 40,50,60,70,80,85` (or `--skip-comparison` to run
this part alone). Every `tvdb/` corpus file is prepared as the engine prepares it (upright, sRGB, each
distinct size resized once); each size is encoded by the engine's own encoder as WebP at
`--webp-quality` and as AVIF at every quality of the list, and each output is compared with the
pixels it was encoded from (SSIM, scikit-image, Gaussian window) and counted in bytes. The matched
AVIF quality is the lowest whose mean SSIM reaches WebP's: the formats then look alike, and the
negotiation (serving/negotiation.py) sends whichever encoding of a size is smaller.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import contenders
from benchmarks.similarity import ssim
from tvdb_images.imaging.encode import encode
from tvdb_images.imaging.render import RenderSettings


def sweep(files: dict[str, bytes], webp_quality: int, avif_qualities: list[int]) -> dict[str, Any]:
    prepared = {name: contenders.prepare_limit(data) for name, data in files.items()}
    webp_settings = RenderSettings(format="webp", quality=webp_quality)
    webp_ssim: list[float] = []
    webp_bytes: list[int] = []
    avif: dict[int, dict[str, list[Any]]] = {q: {"ssim": [], "bytes": []} for q in avif_qualities}
    for name, ready in prepared.items():
        for pixels in ready.pixels:
            webp = encode(pixels, webp_settings)
            webp_bytes.append(len(webp))
            webp_ssim.append(_ssim(webp, pixels))
            for quality in avif_qualities:
                encoded = encode(pixels, RenderSettings(format="avif", quality=quality))
                avif[quality]["bytes"].append(len(encoded))
                avif[quality]["ssim"].append(_ssim(encoded, pixels))
        print(f"  {name}: {len(ready.pixels)} sizes", flush=True)
    webp_mean = statistics.fmean(webp_ssim)
    rows = []
    for quality in avif_qualities:
        sizes = avif[quality]["bytes"]
        rows.append(
            {
                "avif_quality": quality,
                "avif_bytes": sum(sizes),
                "avif_ssim_mean": statistics.fmean(avif[quality]["ssim"]),
                "avif_ssim_min": min(avif[quality]["ssim"]),
                "bytes_vs_webp": sum(sizes) / sum(webp_bytes),
                "renditions_smaller_than_webp": sum(a < w for a, w in zip(sizes, webp_bytes, strict=True)),
            }
        )
    matched = next((r["avif_quality"] for r in rows if r["avif_ssim_mean"] >= webp_mean), None)
    return {
        "webp_quality": webp_quality,
        "renditions": len(webp_bytes),
        "webp_bytes": sum(webp_bytes),
        "webp_ssim_mean": webp_mean,
        "webp_ssim_min": min(webp_ssim),
        "avif": rows,
        "matched_avif_quality": matched,
    }


def _ssim(encoded: bytes, pixels: Any) -> float:
    value = ssim(encoded, pixels)
    if value is None:  # the corpus has no rendition smaller than SSIM's 7x7 window
        raise ValueError("a rendition too small for SSIM")
    return value


def report(result: dict[str, Any]) -> str:
    from benchmarks.common import table

    rows = [
        [
            f"WebP q{result['webp_quality']}",
            result["webp_bytes"],
            1.0,
            f"{result['webp_ssim_mean']:.4f}",
            f"{result['webp_ssim_min']:.4f}",
            "",
        ]
    ]
    for r in result["avif"]:
        rows.append(
            [
                f"AVIF q{r['avif_quality']}",
                r["avif_bytes"],
                round(r["bytes_vs_webp"], 3),
                f"{r['avif_ssim_mean']:.4f}",
                f"{r['avif_ssim_min']:.4f}",
                f"{r['renditions_smaller_than_webp']} of {result['renditions']}",
            ]
        )
    headers = ["encoding", "bytes", "vs WebP", "SSIM mean", "SSIM min", "smaller than WebP"]
    return (
        "## AVIF quality against WebP (SSIM of each output against the pixels it was encoded from)\n\n"
        + table(headers, rows)
        + f"\n\nmatched AVIF quality (lowest with mean SSIM >= WebP's): {result['matched_avif_quality']}"
    )
