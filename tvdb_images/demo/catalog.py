"""The demo catalog: a few dozen content items of every type whose artwork is the image corpus's
TVDB-shaped photographs, plus a handful of bad sources that the pipeline must refuse and record."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

# (content type, how many items, [(image type, corpus file under tvdb/), ...] per item, cycling files)
_PLAN: list[tuple[str, int, list[tuple[str, list[str]]]]] = [
    (
        "series",
        8,
        [
            ("poster", ["poster_a.jpg", "poster_b.jpg", "poster_progressive.jpg"]),
            ("fanart", ["fanart_a.jpg", "fanart_b.jpg", "fanart_c.jpg", "fanart_4k.jpg"]),
            ("banner", ["banner_a.jpg", "banner_b.jpg"]),
            ("clearlogo", ["clearlogo_a.png"]),
        ],
    ),
    (
        "movies",
        6,
        [("poster", ["poster_b.jpg", "poster_a.jpg"]), ("fanart", ["fanart_c.jpg", "fanart_a.jpg"])],
    ),
    ("episodes", 10, [("image", ["episode_a.jpg", "episode_b.jpg"])]),
    ("seasons", 6, [("poster", ["poster_progressive.jpg", "poster_a.jpg"])]),
    ("people", 6, [("image", ["person_a.jpg", "person_b.jpg"])]),
]

# Bad sources: (content type, image type, path on the origin, what the pipeline should record)
BAD_SOURCES: list[tuple[str, str, str, str]] = [
    ("series", "poster", "bad/truncated.jpg", "truncated"),
    ("movies", "fanart", "bad/html-error-page.jpg", "unsupported_format"),
    ("people", "image", "bad/giant-image.jpg", "too_many_pixels"),
    ("seasons", "poster", "bad/G31D.TIF", "unsupported_format"),
    ("episodes", "image", "tvdb/no-such-image.jpg", "gone"),
]

# The shapes the corpus README lists, for machines without the corpus (stand-ins are drawn).
STAND_IN_SHAPES = {
    "fanart_a.jpg": (1920, 1080),
    "fanart_b.jpg": (1920, 1080),
    "fanart_c.jpg": (1920, 1080),
    "fanart_4k.jpg": (3840, 2160),
    "poster_a.jpg": (680, 1000),
    "poster_b.jpg": (680, 1000),
    "poster_progressive.jpg": (680, 1000),
    "banner_a.jpg": (758, 140),
    "banner_b.jpg": (758, 140),
    "episode_a.jpg": (640, 360),
    "episode_b.jpg": (640, 360),
    "person_a.jpg": (300, 450),
    "person_b.jpg": (300, 450),
    "clearlogo_a.png": (465, 310),
}

_NAMES = {
    "series": "Series",
    "movies": "Movie",
    "episodes": "Episode",
    "seasons": "Season",
    "people": "Person",
}
_BASE_IDS = {"series": 121000, "movies": 345000, "episodes": 7100000, "seasons": 480000, "people": 250000}


@dataclass(frozen=True)
class DemoCatalog:
    path: Path
    items: int
    artworks: int
    bad_artworks: int


def find_corpus() -> Path | None:
    """The image corpus: TVDB_IMAGES_CORPUS_DIR, or `../shared/corpus` beside a source checkout."""
    candidates = []
    if os.environ.get("TVDB_IMAGES_CORPUS_DIR"):
        candidates.append(Path(os.environ["TVDB_IMAGES_CORPUS_DIR"]))
    candidates.append(Path.cwd().parent / "shared" / "corpus")
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "corpus")
    for candidate in candidates:
        if (candidate / "tvdb").is_dir():
            return candidate.resolve()
    return None


def draw_stand_ins(directory: Path) -> Path:
    """Draw stand-in images with the corpus's shapes (gradients with text), when no corpus is present."""
    tvdb = directory / "tvdb"
    tvdb.mkdir(parents=True, exist_ok=True)
    for name, (width, height) in STAND_IN_SHAPES.items():
        target = tvdb / name
        if target.exists():
            continue
        mode = "RGBA" if name.endswith(".png") else "RGB"
        image = Image.linear_gradient("L").resize((width, height)).convert(mode)
        ImageDraw.Draw(image).text((10, 10), name, fill="white")
        image.save(target, quality=90)
    bad = directory / "bad"
    bad.mkdir(exist_ok=True)
    jpeg = (tvdb / "poster_a.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (bad / "html-error-page.jpg").write_bytes(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    (bad / "G31D.TIF").write_bytes(b"II*\x00" + b"\x00" * 64)
    (bad / "giant-image.jpg").write_bytes(_claim_size(jpeg, 20000, 14000))
    return directory


def _claim_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims a huge size: a decompression bomb's shape."""
    start = jpeg.find(b"\xff\xc0")
    if start < 0:
        start = jpeg.find(b"\xff\xc2")
    return jpeg[: start + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[start + 9 :]


def write_demo_catalog(path: Path, origin: str) -> DemoCatalog:
    """Write the JSON Lines demo catalog whose URLs point at `origin`."""
    lines = []
    artwork_id = 62000
    artworks = 0
    for content_type, count, kinds in _PLAN:
        for index in range(count):
            content_id = _BASE_IDS[content_type] + index * 7 + 1
            item_artworks = []
            for image_type, files in kinds:
                if image_type == "clearlogo" and index % 2:
                    continue
                artwork_id += 1
                item_artworks.append(
                    {
                        "id": artwork_id,
                        "type": image_type,
                        "url": f"{origin}/tvdb/{files[index % len(files)]}",
                        "language": "eng",
                        "score": 100 - index,
                    }
                )
            lines.append(
                {
                    "content_type": content_type,
                    "id": content_id,
                    "name": f"Demo {_NAMES[content_type]} {index + 1}",
                    "artworks": item_artworks,
                }
            )
            artworks += len(item_artworks)
    for offset, (content_type, image_type, origin_path, _expected) in enumerate(BAD_SOURCES):
        artwork_id += 1
        lines.append(
            {
                "content_type": content_type,
                "id": _BASE_IDS[content_type] + 9000 + offset,
                "name": f"Demo {_NAMES[content_type]} with a bad {image_type}",
                "artworks": [
                    {"id": artwork_id, "type": image_type, "url": f"{origin}/{origin_path}", "score": 1}
                ],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return DemoCatalog(
        path=path, items=len(lines), artworks=artworks + len(BAD_SOURCES), bad_artworks=len(BAD_SOURCES)
    )
