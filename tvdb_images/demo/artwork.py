"""The demo's artwork: the photographs shipped in `photos/`, cropped and resized into the shapes TVDB
serves, a drawn clear logo with real transparency, and a few bad sources the pipeline must refuse.

Everything is written deterministically from files inside the package, so the demo needs nothing
beside the installation and gives the same bytes (and so the same checksums) on every run.
Photographs (from scikit-image's sample data): astronaut.jpg, NASA, public domain; rocket.jpg,
SpaceX, public domain; coffee.jpg, Rachel Michetti, CC0; chelsea.jpg, Stefan van der Walt, CC0.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

# tvdb/ file -> (shipped photograph, width, height)
ARTWORK: dict[str, tuple[str, int, int]] = {
    "fanart_a.jpg": ("coffee.jpg", 1920, 1080),
    "fanart_b.jpg": ("rocket.jpg", 1920, 1080),
    "fanart_c.jpg": ("chelsea.jpg", 1920, 1080),
    "fanart_4k.jpg": ("astronaut.jpg", 3840, 2160),
    "poster_a.jpg": ("astronaut.jpg", 680, 1000),
    "poster_b.jpg": ("coffee.jpg", 680, 1000),
    "poster_progressive.jpg": ("rocket.jpg", 680, 1000),
    "banner_a.jpg": ("chelsea.jpg", 758, 140),
    "banner_b.jpg": ("coffee.jpg", 758, 140),
    "episode_a.jpg": ("rocket.jpg", 640, 360),
    "episode_b.jpg": ("astronaut.jpg", 640, 360),
    "person_a.jpg": ("astronaut.jpg", 300, 450),
    "person_b.jpg": ("chelsea.jpg", 300, 450),
}
CLEAR_LOGO = ("clearlogo_a.png", 465, 310)


def photograph(name: str) -> Image.Image:
    source = resources.files("tvdb_images.demo") / "photos" / name
    with resources.as_file(source) as path, Image.open(path) as image:
        return image.convert("RGB")


def shaped(name: str, width: int, height: int) -> Image.Image:
    """The photograph cropped to width:height (a little above centre, where faces are) and resized."""
    return ImageOps.fit(photograph(name), (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.4))


def clear_logo(width: int, height: int) -> Image.Image:
    """A title on a transparent background, the way TVDB's clear logos look."""
    logo = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    font = ImageFont.load_default(size=height // 4)
    draw.rounded_rectangle((8, height // 4, width - 8, height * 3 // 4), radius=24, fill=(196, 30, 58, 235))
    draw.text((width // 2, height // 2), "TVDB DEMO", font=font, anchor="mm", fill=(255, 255, 255, 255))
    return logo


def write_artwork(directory: Path) -> Path:
    """Write tvdb/ (the demo's artwork) and bad/ (sources to refuse) under `directory`; return it."""
    tvdb = directory / "tvdb"
    tvdb.mkdir(parents=True, exist_ok=True)
    for name, (photo, width, height) in ARTWORK.items():
        image = shaped(photo, width, height)
        image.save(tvdb / name, "JPEG", quality=90, progressive="progressive" in name)
    name, width, height = CLEAR_LOGO
    clear_logo(width, height).save(tvdb / name, "PNG")
    _write_bad_sources(directory / "bad", (tvdb / "poster_a.jpg").read_bytes())
    return directory


def _write_bad_sources(bad: Path, jpeg: bytes) -> None:
    bad.mkdir(exist_ok=True)
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (bad / "html-error-page.jpg").write_bytes(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    (bad / "G31D.TIF").write_bytes(b"II*\x00" + b"\x00" * 64)
    (bad / "giant-image.jpg").write_bytes(_claim_size(jpeg, 20000, 14000))


def _claim_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims a huge size: a decompression bomb's shape."""
    start = jpeg.find(b"\xff\xc0")
    if start < 0:
        start = jpeg.find(b"\xff\xc2")
    return jpeg[: start + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[start + 9 :]
