"""TVDB-shaped artwork made from real photographs: scikit-image's sample images bundled in its wheel.

Only samples that ship inside the package are used (`skimage.data` reads them from its own folder;
none needs a download). Each is cropped to the artwork's aspect ratio and resized to TVDB's sizes,
so the pipeline sees photographic content (texture, gradients, faces) in the shapes it will serve.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageOps
from skimage import data as samples

# Sample name -> who made it and under what terms (from skimage.data's docstrings).
SAMPLES = {
    "astronaut": "NASA, public domain",
    "coffee": "Rachel Michetti, CC0",
    "chelsea": "Stefan van der Walt, CC0",
    "rocket": "SpaceX, public domain",
    "camera": "Lav Varshney, CC0",
    "logo": "scikit-image logo",
}

# tvdb/ file -> (sample, width, height), the shapes TVDB serves.
TVDB_PHOTOS: dict[str, tuple[str, int, int]] = {
    "fanart_a.jpg": ("coffee", 1920, 1080),
    "fanart_b.jpg": ("rocket", 1920, 1080),
    "fanart_c.jpg": ("chelsea", 1920, 1080),
    "fanart_4k.jpg": ("astronaut", 3840, 2160),
    "poster_a.jpg": ("astronaut", 680, 1000),
    "poster_b.jpg": ("coffee", 680, 1000),
    "poster_progressive.jpg": ("rocket", 680, 1000),
    "banner_a.jpg": ("chelsea", 758, 140),
    "banner_b.jpg": ("coffee", 758, 140),
    "episode_a.jpg": ("rocket", 640, 360),
    "episode_b.jpg": ("astronaut", 640, 360),
    "person_a.jpg": ("astronaut", 300, 450),
    "person_b.jpg": ("chelsea", 300, 450),
    "clearlogo_a.png": ("logo", 465, 310),
}


@cache
def sample(name: str) -> Image.Image:
    """A bundled sample as a Pillow image (RGB, RGBA for the logo, L for greyscale ones)."""
    if name not in SAMPLES:
        raise KeyError(f"{name} is not one of the bundled samples used here")
    return Image.fromarray(getattr(samples, name)())


def shaped(name: str, width: int, height: int, *, centering: tuple[float, float] = (0.5, 0.4)) -> Image.Image:
    """The sample cropped to width:height (centre, a little above middle: faces) and resized to it."""
    return ImageOps.fit(sample(name), (width, height), Image.Resampling.LANCZOS, centering=centering)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def tvdb_files() -> dict[str, bytes]:
    """Every tvdb/ file: JPEG q90 (one progressive) and the clear logo as RGBA PNG."""
    files = {}
    for name, (sample_name, width, height) in TVDB_PHOTOS.items():
        image = shaped(sample_name, width, height)
        if name.endswith(".png"):
            files[name] = encoded(image.convert("RGBA"), "PNG")
        else:
            files[name] = encoded(image, "JPEG", quality=90, progressive="progressive" in name)
    return files
