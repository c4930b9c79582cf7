"""The demo catalog: a few dozen content items of every type whose artwork is the demo's TVDB-shaped
photographs (demo/artwork.py), plus a handful of bad sources that the pipeline must refuse and record."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tvdb_images.demo.artwork import write_artwork

# (content type, how many items, [(image type, artwork file under tvdb/), ...] per item, cycling files)
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
    """A directory of images laid out like the demo's (tvdb/, bad/), when TVDB_IMAGES_CORPUS_DIR names
    one; otherwise None and the demo serves its own artwork (`draw_stand_ins`)."""
    named = os.environ.get("TVDB_IMAGES_CORPUS_DIR")
    if named and (Path(named) / "tvdb").is_dir():
        return Path(named).resolve()
    return None


def draw_stand_ins(directory: Path) -> Path:
    """Write the demo's own artwork (shipped photographs in TVDB's shapes, and bad sources)."""
    return write_artwork(directory)


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
