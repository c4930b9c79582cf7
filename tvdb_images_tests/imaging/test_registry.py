"""The registry of formats and sizes is the one source: every format and size round-trips through the
modules that use it, and a new row reaches them all with no other file changed."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import tvdb_images.registry as registry
from serving.negotiation import choose_format
from serving.recount import recount_storage
from serving.schemas import ImageFormat, Size
from tvdb_images.config import load_settings
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_renditions, sniff_format
from tvdb_images.imaging.sizes import SIZE_BOXES
from tvdb_images.storage import Bucket, layout
from tvdb_images.storage.local import LocalObjectStore

ROOT = Path(__file__).resolve().parents[2]
PATH = layout.artwork_storage_path("series", 121361, "poster", None)
OUTPUTS = list(registry.OUTPUT_FORMATS.values())
SOURCES = list(registry.SOURCE_FORMATS.values())


def _photo(image_format: str) -> bytes:
    buffer = io.BytesIO()
    pillow_format = registry.FORMAT_BY_NAME[image_format].pillow_formats[0]
    Image.new("RGB", (640, 480), (200, 120, 40)).save(buffer, pillow_format)
    return buffer.getvalue()


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda f: f.name)
def test_every_output_format_round_trips(output: registry.ImageFormat, tmp_path: Path) -> None:
    """Render -> bytes of that format -> storage key -> format -> MIME -> `Accept` -> that format."""
    settings = RenderSettings(format=output.name)
    result = render_renditions(_photo("png"), settings, ValidationLimits())
    assert [r.size for r in result.renditions] == list(registry.SIZE_NAMES)
    store = LocalObjectStore(tmp_path)
    store.ensure_buckets()
    for rendition in result.renditions:
        assert (rendition.format, rendition.mime, rendition.extension) == (
            output.name,
            output.mime,
            output.extension,
        )
        assert sniff_format(rendition.data) == output.name
        key = layout.rendition_key(PATH, rendition.size, rendition.extension)
        match = layout.RENDITION_KEY_PATTERN.match(key)
        assert match and match["size"] == rendition.size
        assert registry.FORMAT_BY_EXTENSION[match["ext"]] is output
        store.put(Bucket.THUMBNAILS, key, rendition.data, content_type=rendition.mime)
        assert store.head(Bucket.THUMBNAILS, key).content_type == output.mime
    # Named in `Accept`, it is the one sent, whichever other format is stored too.
    others = [f.name for f in registry.FORMATS if f is not output]
    for other in others:
        assert choose_format([other, output.name], output.mime) == output.name
    counted = recount_storage(store).stats.renditions
    assert {(row["size"], row["format"]) for row in counted} == {(s, output.name) for s in layout.SIZES}
    assert load_settings(IMAGE_FORMAT=output.name).image_format == output.name
    assert ImageFormat(output.name).value == output.name


@pytest.mark.parametrize("source", SOURCES, ids=lambda f: f.name)
def test_every_source_format_is_accepted_stored_and_served(source: registry.ImageFormat) -> None:
    data = _photo(source.name)
    assert sniff_format(data) == source.name
    result = render_renditions(data, RenderSettings(), ValidationLimits())
    assert (result.source.format, result.source.mime, result.source.extension) == (
        source.name,
        source.mime,
        source.extension,
    )
    key = layout.original_key(PATH, source.name)
    assert key.endswith(f"/original.{source.extension}") and layout.is_layout_key(key)
    assert layout.MIME_BY_EXTENSION[source.extension] == source.mime
    assert ImageFormat(source.name).value == source.name
    # Stored as it is (mirrored) next to the default format, it is sent to a client that names it only.
    assert choose_format([registry.DEFAULT_OUTPUT_FORMAT, source.name], source.mime) == source.name


def test_serving_enums_and_layout_follow_the_registry() -> None:
    assert [f.value for f in ImageFormat] == [f.name for f in registry.FORMATS]
    assert [s.value for s in Size] == list(registry.SIZE_NAMES) == list(layout.SIZES)
    assert {s.name: s.box for s in registry.RENDITION_SIZES} == SIZE_BOXES
    assert registry.OUTPUT_FORMAT_NAMES[0] == registry.DEFAULT_OUTPUT_FORMAT
    assert choose_format([f.name for f in registry.FORMATS], "*/*") == registry.DEFAULT_OUTPUT_FORMAT
    for explicit in (f for f in registry.FORMATS if f.explicit_only):
        assert choose_format([explicit.name], "image/png") == explicit.name  # the only one stored
        assert choose_format([explicit.name, registry.DEFAULT_OUTPUT_FORMAT], "*/*") != explicit.name


def test_no_other_module_lists_formats_or_sizes() -> None:
    """MIME types of the registry's formats and its size boxes are written nowhere else in the code."""
    facts = [re.escape(f'"{f.mime}"') for f in registry.FORMATS]
    facts += [re.escape(f"({s.box[0]}, {s.box[1]})") for s in registry.RENDITION_SIZES if s.box]
    pattern = re.compile("|".join(facts))
    registry_file = Path(registry.__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for package in ("tvdb_images", "serving")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.resolve() != registry_file
        for line in path.read_text().splitlines()
        if pattern.search(line)
    ]
    assert offenders == []


# A format and a size added to the registry's tables in a copy of its source, then read back through
# the modules that use them, in a fresh interpreter so this process keeps the real registry.
_NEW_FORMAT = """
    ImageFormat(
        "jxl", "JPEG XL", "image/jxl", "jxl", ("JXL",), source=False, explicit_only=True,
        encoding=Encoding("JXL", "webp_method", "effort", "e", frozenset({"RGB", "RGBA"})),
    ),
"""
_NEW_SIZE = """
    RenditionSize("tiny", (150, 84)),
"""
_NEW_ROWS = {"FORMATS": _NEW_FORMAT, "RENDITION_SIZES": _NEW_SIZE}
_CHECK = """
import importlib.util, sys
import tvdb_images
spec = importlib.util.spec_from_file_location("tvdb_images.registry", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["tvdb_images.registry"] = module
spec.loader.exec_module(module)

from fastapi import FastAPI
from serving.routes import artwork, images
from serving.negotiation import choose_format
from serving.schemas import ImageFormat, Size
from tvdb_images.config import load_settings
from tvdb_images.imaging import ENGINE_VERSION, RenderSettings, render_settings_signature
from tvdb_images.imaging.sizes import SIZE_BOXES
from tvdb_images.storage import layout

path = layout.artwork_storage_path("movies", 7, "fanart", None)
key = layout.rendition_key(path, "tiny", "jxl")
assert layout.is_layout_key(key) and key.endswith("/tiny.jxl"), key
assert layout.MIME_BY_EXTENSION["jxl"] == "image/jxl"
assert ImageFormat("jxl") and Size("tiny") and SIZE_BOXES["tiny"] == (150, 84)
assert choose_format(["webp", "jxl"], "image/jxl") == "jxl"
assert choose_format(["webp", "jxl"], "image/webp, image/jxl") == "jxl"  # the first row is preferred
assert choose_format(["webp", "jxl"], "*/*") == "webp"  # explicit-only, like AVIF
assert load_settings(IMAGE_FORMAT="jxl").image_format == "jxl"
assert render_settings_signature(RenderSettings(format="jxl")) == f"jxl-q85-e4-v{ENGINE_VERSION}"
app = FastAPI()
for router in (images.router, artwork.router):
    app.include_router(router)
schema = app.openapi()["components"]["schemas"]
assert "jxl" in schema["ImageFormat"]["enum"] and "tiny" in schema["Size"]["enum"], schema
print("ok")
"""


def _with_rows(source: str) -> str:
    """The registry's source with a new first row of FORMATS (the most preferred format) and a new
    last row of RENDITION_SIZES (the smallest size)."""
    lines = source.splitlines(keepends=True)
    before: dict[int, str] = {}
    for node in ast.parse(source).body:
        target = getattr(node, "target", None)
        if isinstance(node, ast.AnnAssign) and isinstance(target, ast.Name) and target.id in _NEW_ROWS:
            assert isinstance(node.value, ast.Tuple) and node.value.end_lineno is not None
            first_row = node.value.elts[0].lineno
            # A tuple's last line is its closing parenthesis: a last row goes just before it.
            before[first_row if target.id == "FORMATS" else node.value.end_lineno] = _NEW_ROWS[target.id]
    assert len(before) == 2
    return "".join(before.get(number, "").lstrip("\n") + line for number, line in enumerate(lines, 1))


def test_a_new_row_is_all_it_takes(tmp_path: Path) -> None:
    patched = tmp_path / "registry.py"
    patched.write_text(_with_rows(Path(registry.__file__).read_text()))
    run = subprocess.run(
        [sys.executable, "-c", _CHECK, str(patched)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
