"""The manifest as a browser uses it: Debian's chromium (Playwright) loads a page from another loopback
origin whose `<picture>` is built only from the manifest JSON (one `<source>` per format with its
`type`, `srcset` and the suggested `sizes`; the fallback `<img>`; the dominant colour painted behind
it), at several viewport widths and device pixel ratios. The real API (`tvdb-images serve` over a
PostgreSQL + SeaweedFS catalog from a real sync, support/responsive_data) logs every request it
answers; its access log says which size and format the browser chose each time: AVIF (Chromium
decodes it, and the manifest lists it first) of the narrowest width covering viewport x DPR."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tvdb_images_tests.support import services
from tvdb_images_tests.support.browser import chromium, serve_page
from tvdb_images_tests.support.processes import free_port, start_api_server
from tvdb_images_tests.support.responsive_data import WIDE, WIDE_WIDTHS, responsive_data
from tvdb_images_tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

# (viewport width in CSS px, device pixel ratio) -> the size whose width is exactly width x DPR.
CASES = [((300, 1), "thumbnail"), ((640, 2), "medium"), ((960, 2), "large"), ((800, 3), "original")]

# The page's whole script: fetch the manifest named in the query, build the <picture> from it alone.
PAGE = b"""<!doctype html><meta charset="utf-8"><title>manifest</title>
<style>body { margin: 0 } img { display: block; width: 100vw; height: auto }</style>
<script>
window.shown = (async () => {
  const manifest = await (await fetch(new URLSearchParams(location.search).get("manifest"))).json();
  const picture = document.createElement("picture");
  for (const format of manifest.formats) {
    const source = document.createElement("source");
    source.type = format.type;
    source.srcset = format.srcset;
    source.sizes = manifest.sizes;
    picture.append(source);
  }
  const img = document.createElement("img");
  img.width = manifest.fallback.width;
  img.height = manifest.fallback.height;
  img.alt = "";
  img.style.aspectRatio = String(manifest.aspect_ratio);
  if (manifest.placeholders) img.style.backgroundColor = manifest.placeholders.dominant_color;
  picture.append(img);
  document.body.append(picture);
  img.src = manifest.fallback.url;  // last: the sources are in place when the browser chooses
  await img.decode();
  return {currentSrc: img.currentSrc, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          background: getComputedStyle(img).backgroundColor, dominant: manifest.placeholders.dominant_color};
})();
</script>"""


@pytest.fixture
def app_origin() -> Iterator[str]:
    with serve_page(PAGE) as origin:
        yield origin


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def _image_requests(log: Path) -> list[dict]:
    """The access log's image requests (not the manifest's), in the order they were answered."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line.get("event") == "http_request"
        and line["path"].startswith(f"/api/v1/images/artwork/{WIDE}/")
        and not line["path"].endswith("/manifest")
    ]


def _new_image_requests(log: Path, seen: int) -> list[dict]:
    """Image requests logged after the first `seen`: waits for one, then a moment for any other."""
    wait_until(lambda: len(_image_requests(log)) > seen, 10, message="no image request logged")
    # Not a wait for work but for its absence: a second fetch (the fallback, another width) is logged by now.
    time.sleep(0.5)
    return _image_requests(log)[seen:]


def test_a_picture_built_from_the_manifest_fetches_the_width_and_format_it_needs(
    tmp_path: Path, postgres_template: str, seaweedfs: services.SeaweedFS, app_origin: str, browser
) -> None:
    with responsive_data(tmp_path / "data", postgres_template, seaweedfs) as data:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            **data.env,
            "PYTHONUNBUFFERED": "1",
            "PUBLIC_BASE_URL": api,
            "CORS_ALLOW_ORIGINS": app_origin,
        }
        process, _ = start_api_server("serve-manifest", env, cwd=tmp_path, log_dir=tmp_path, port=port)
        try:
            manifest_url = f"{api}/api/v1/images/artwork/{WIDE}/manifest"
            seen = []
            for (width, ratio), _size in CASES:
                before = len(_image_requests(process.log_path))
                context = browser.new_context(
                    viewport={"width": width, "height": 600}, device_scale_factor=ratio
                )
                try:
                    page = context.new_page()
                    page.goto(f"{app_origin}/?manifest={quote(manifest_url, safe='')}")
                    shown = page.evaluate("window.shown")
                finally:
                    context.close()
                seen.append((shown, _new_image_requests(process.log_path, before)))
        finally:
            process.stop()

    for ((width, ratio), size), (shown, fetched) in zip(CASES, seen, strict=True):
        case = f"viewport {width} px at DPR {ratio}"
        # Exactly one image request: the AVIF of the size as wide as the viewport's device pixels.
        assert [
            (line["path"].rsplit("/", 1)[1], line["query"].split("&")[0], line["status"]) for line in fetched
        ] == [(size, "format=avif", 200)], (case, fetched)
        assert fetched[0]["bytes"] > 0 and fetched[0]["query"].startswith("format=avif&v=")
        assert WIDE_WIDTHS[size] == width * ratio, case
        # The image shown is the one fetched (its natural size is density-corrected: the viewport's).
        assert shown["naturalWidth"] == width, (case, shown)
        assert shown["currentSrc"] == f"{api}{fetched[0]['path']}?{fetched[0]['query']}", (case, shown)
        # The placeholder colour is painted behind the image.
        red, green, blue = (int(shown["dominant"][i : i + 2], 16) for i in (1, 3, 5))
        assert shown["background"] == f"rgb({red}, {green}, {blue})", (case, shown)
