"""The responsive manifest (`.../{image_type}/manifest`, `.../artwork/{id}/manifest`) over data written by
real syncs: on the embedded setup and on PostgreSQL + SeaweedFS S3 (the `served` data), and on a wide
fanart stored in AVIF and WebP with a crop (support/responsive_data)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from serving.conditional import content_version
from serving.manifest import build_manifest
from serving.queries import ArtworkRecord, RenditionRecord
from tvdb_images.catalog.models import Artwork
from tvdb_images.config import ConfigError, load_settings
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.responsive_data import SMALL, WIDE, WIDE_WIDTHS, responsive_data
from tvdb_images_tests.support.serving_data import (
    AVIF_ARTWORK,
    MIRRORED,
    PENDING,
    PRIMARY_POSTER,
    RecordingStore,
    ServedData,
    api,
)

ITEM = "/api/v1/images/series/101/poster/manifest"
PIL_FORMATS = {"webp": "WEBP", "avif": "AVIF", "jpeg": "JPEG"}
_CANDIDATE = re.compile(r"(\S+) ([1-9][0-9]*)w")


@pytest.fixture(scope="module")
def responsive(
    tmp_path_factory: pytest.TempPathFactory, postgres_template: str, seaweedfs: services.SeaweedFS
) -> Iterator[ServedData]:
    with responsive_data(tmp_path_factory.mktemp("manifest"), postgres_template, seaweedfs) as data:
        yield data


def rows(data: ServedData, artwork_id: int) -> dict[tuple[str, str], Any]:
    with data.catalog.session() as session:
        return {(r.size, r.format): r for r in session.get(Artwork, artwork_id).renditions}


def candidates(srcset: str) -> list[tuple[str, int]]:
    """A `srcset` parsed as a browser does: `URL Nw` candidates separated by commas."""
    parsed = []
    for candidate in srcset.split(", "):
        match = _CANDIDATE.fullmatch(candidate)
        assert match is not None, candidate
        parsed.append((match.group(1), int(match.group(2))))
    return parsed


def decoded(body: bytes, image_format: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == PIL_FORMATS[image_format]
        image.load()
        return image.size


def test_both_paths_give_the_primary_artworks_manifest_and_every_url_serves_it(served: ServedData) -> None:
    stored = rows(served, PRIMARY_POSTER)
    with api(served) as client:
        item = client.get(ITEM)
        assert item.status_code == 200, item.text
        by_id = client.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}/manifest")
        assert by_id.json() == item.json()
        manifest = item.json()
        assert manifest["artwork_id"] == PRIMARY_POSTER and item.headers["x-artwork-id"] == str(
            PRIMARY_POSTER
        )
        assert (manifest["width"], manifest["height"], manifest["aspect_ratio"]) == (680, 1000, 0.68)
        assert [f["format"] for f in manifest["formats"]] == ["webp"]
        webp = manifest["formats"][0]
        assert webp["type"] == "image/webp"
        assert [i["size"] for i in webp["images"]] == ["original", "large", "medium", "small", "thumbnail"]
        for image in webp["images"]:
            row = stored[(image["size"], "webp")]
            assert (image["width"], image["height"], image["bytes"]) == (row.width, row.height, row.bytes)
            version = content_version([row.checksum])
            assert (
                image["url"]
                == f"/api/v1/images/artwork/{PRIMARY_POSTER}/{image['size']}?format=webp&v={version}"
            )
            response = client.get(image["url"])
            assert response.status_code == 200 and response.headers["cache-control"].endswith("immutable")
            assert len(response.content) == image["bytes"]
            assert decoded(response.content, "webp") == (image["width"], image["height"])
        # The source is 680x1000: `original` and `large` are both 680 wide, so the srcset lists 680w once.
        assert [w for _, w in candidates(webp["srcset"])] == [115, 245, 490, 680]
        assert manifest["sizes"] == "100vw" and manifest["crops"] == {}
        assert manifest["fallback"]["size"] == "original" and manifest["fallback"]["format"] == "webp"
        assert (
            manifest["placeholders"]
            == client.get(f"/api/v1/images/artwork/{PRIMARY_POSTER}").json()["placeholders"]
        )
        assert re.fullmatch(r"#[0-9a-f]{6}", manifest["placeholders"]["dominant_color"])


def test_avif_comes_first_and_each_srcset_names_only_its_own_format(served: ServedData) -> None:
    with api(served) as client:
        manifest = client.get("/api/v1/images/people/301/image/manifest").json()
    assert manifest["artwork_id"] == AVIF_ARTWORK
    assert [(f["format"], f["type"]) for f in manifest["formats"]] == [
        ("avif", "image/avif"),
        ("webp", "image/webp"),
    ]
    for entry in manifest["formats"]:
        urls = {i["url"]: i["width"] for i in entry["images"]}
        parsed = candidates(entry["srcset"])
        widths = [w for _, w in parsed]
        assert widths == sorted(set(widths)) == sorted(set(urls.values()))
        for url, width in parsed:
            assert urls[url] == width and f"format={entry['format']}&" in url
    assert manifest["fallback"]["format"] == "webp"  # every browser decodes it


def test_a_mirrored_source_has_its_own_format_and_no_placeholders(served: ServedData) -> None:
    with api(served) as client:
        manifest = client.get(f"/api/v1/images/artwork/{MIRRORED[2]}/manifest").json()
    (entry,) = manifest["formats"]
    assert entry["format"] == "jpeg" and entry["type"] == "image/jpeg"
    assert [i["size"] for i in entry["images"]] == ["original"]
    assert candidates(entry["srcset"]) == [(entry["images"][0]["url"], entry["images"][0]["width"])]
    assert manifest["fallback"]["format"] == "jpeg" and manifest["placeholders"] is None


def test_unknown_and_unstored_artwork_is_404_like_the_image_endpoints(served: ServedData) -> None:
    with api(served, missing_image_redirect=True) as client:
        for path in (
            "/api/v1/images/series/101/banner/manifest",
            "/api/v1/images/series/999999/poster/manifest",
            "/api/v1/images/artwork/999999/manifest",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "artwork_not_found"
            assert response.headers["cache-control"] == "no-store"
        # Nothing stored yet: a 404 naming the source, never a redirect to it (a manifest is no image).
        for path, status in (
            (f"/api/v1/images/{PENDING[0]}/{PENDING[1]}/{PENDING[3]}/manifest", "pending"),
            ("/api/v1/images/artwork/5040/manifest", "failed"),
        ):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404, (path, response.status_code)
            body = response.json()
            assert body["code"] == "image_not_stored" and body["details"]["artwork_status"] == status


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/images/shows/1/poster/manifest", "content_type"),
        ("/api/v1/images/series/1/logo/manifest", "image_type"),
        ("/api/v1/images/series/abc/poster/manifest", "content_id"),
        ("/api/v1/images/series/01/poster/manifest", "content_id"),
        ("/api/v1/images/series/9223372036854775808/poster/manifest", "content_id"),
        ("/api/v1/images/artwork/-5/manifest", "artwork_id"),
        ("/api/v1/images/artwork/1.5/manifest", "artwork_id"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    embedded_data: ServedData, path: str, parameter: str
) -> None:
    recorder = RecordingStore(embedded_data.store)
    with api(embedded_data, store=recorder) as client:
        response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_parameter" and response.json()["parameter"] == parameter
    assert recorder.calls == []


@pytest.mark.parametrize("path", [ITEM, f"/api/v1/images/artwork/{AVIF_ARTWORK}/manifest"])
def test_head_answers_the_headers_of_get_and_the_etag_revalidates(served: ServedData, path: str) -> None:
    volatile = {"x-request-id", "date"}
    with api(served) as client:
        get = client.get(path)
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert {k: v for k, v in head.headers.items() if k not in volatile} == {
            k: v for k, v in get.headers.items() if k not in volatile
        }
        assert int(get.headers["content-length"]) == len(get.content)
        assert get.headers["cache-control"] == "public, max-age=60"
        assert get.headers["content-type"] == "application/json"
        etag = get.headers["etag"]
        assert etag.startswith('W/"')
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_urls_are_versioned_on_the_cdn_and_absolute_under_public_base_url(served: ServedData) -> None:
    cdn = "https://cdn.example.test"
    recorder = RecordingStore(store_from_settings(served.settings.model_copy(update={"cdn_base_url": cdn})))
    with api(served, store=recorder, cdn_base_url=cdn) as client:
        manifest = client.get(f"/api/v1/images/artwork/{AVIF_ARTWORK}/manifest").json()
    assert recorder.calls == []  # built from the catalog alone
    stored = rows(served, AVIF_ARTWORK)
    for entry in manifest["formats"]:
        for image in entry["images"]:
            row = stored[(image["size"], entry["format"])]
            assert image["url"] == f"{cdn}/{row.storage_key}?v={content_version([row.checksum])}"
        assert all(url.startswith(f"{cdn}/") for url, _ in candidates(entry["srcset"]))

    base = "https://images.example.test/tvdb"
    with api(served, public_base_url=base) as client:
        manifest = client.get(f"/api/v1/images/artwork/{AVIF_ARTWORK}/manifest").json()
    urls = [i["url"] for f in manifest["formats"] for i in f["images"]]
    assert urls and all(url.startswith(f"{base}/api/v1/images/artwork/{AVIF_ARTWORK}/") for url in urls)


def test_wide_source_gives_one_candidate_per_size_and_crops_apart(responsive: ServedData) -> None:
    stored = rows(responsive, WIDE)
    with api(responsive) as client:
        manifest = client.get("/api/v1/images/series/931/fanart/manifest").json()
        assert manifest["artwork_id"] == WIDE
        assert (manifest["width"], manifest["height"], manifest["aspect_ratio"]) == (2400, 1350, 1.7778)
        assert [f["format"] for f in manifest["formats"]] == ["avif", "webp"]
        for entry in manifest["formats"]:
            assert {i["size"]: i["width"] for i in entry["images"]} == WIDE_WIDTHS
            assert [w for _, w in candidates(entry["srcset"])] == sorted(WIDE_WIDTHS.values())
            assert "card" not in entry["srcset"]
        # The crop has its box's aspect ratio: listed by name, one entry per format, never in a srcset.
        assert list(manifest["crops"]) == ["card"]
        assert [(c["format"], c["width"], c["height"]) for c in manifest["crops"]["card"]] == [
            ("avif", 342, 513),
            ("webp", 342, 513),
        ]
        for crop in manifest["crops"]["card"]:
            assert crop["bytes"] == stored[("card", crop["format"])].bytes
            response = client.get(crop["url"])
            assert response.status_code == 200 and response.headers["content-type"] == crop["type"]
            assert decoded(response.content, crop["format"]) == (342, 513)
        fallback = manifest["fallback"]
        assert (fallback["size"], fallback["format"], fallback["width"]) == ("medium", "webp", 1280)

        small = client.get(f"/api/v1/images/artwork/{SMALL}/manifest").json()
    # A 200x300 poster: every size but the thumbnail (113x169) keeps the source's dimensions.
    for entry in small["formats"]:
        assert [w for _, w in candidates(entry["srcset"])] == [113, 200]
        assert dict(candidates(entry["srcset"])).keys() == {
            i["url"] for i in entry["images"] if i["size"] in ("thumbnail", "small")
        }


def test_a_crop_may_not_take_the_manifests_name() -> None:
    with pytest.raises(ConfigError, match=r"CROP_RENDITIONS: .*reserved"):
        load_settings(CROP_RENDITIONS="card:342x513,manifest:300x300")


# -- the pure function, on records no sync writes ------------------------------------------------


def _record(renditions: list[tuple[str, str, int, int]]) -> ArtworkRecord:
    """An artwork whose renditions are (size, format, width, height), with made-up keys and bytes."""
    built = tuple(
        RenditionRecord(
            size=size,
            format=image_format,
            bucket=Bucket.THUMBNAILS,
            storage_key=f"series/ab/cd/1/poster/{size}.{image_format}",
            width=width,
            height=height,
            bytes=width * height // 10,
            content_type=f"image/{image_format}",
            checksum=f"{size}-{image_format}",
            etag=f'"{size}-{image_format}"',
            version=f"{size}-{image_format}",
            pinned_path=f"/{size}.{image_format}",
        )
        for size, image_format, width, height in renditions
    )
    return ArtworkRecord(
        id=1,
        content_type="series",
        content_id=1,
        image_type="poster",
        language=None,
        score=None,
        source_url="https://artworks.thetvdb.com/banners/1.jpg",
        status="processed",
        failure_cause=None,
        processed_at=None,
        source_width=3000,
        source_height=2000,
        source_bytes=1,
        renditions=built,
        size_versions={},
    )


def test_an_avif_only_artwork_falls_back_to_avif_and_a_narrow_one_to_its_narrowest_size() -> None:
    manifest = build_manifest(
        _record(
            [("original", "avif", 3000, 2000), ("large", "avif", 1620, 1080), ("medium", "avif", 1080, 720)]
        ),
        lambda r: r.pinned_path,
    )
    assert [f.format for f in manifest.formats] == ["avif"]
    assert (manifest.fallback.format, manifest.fallback.size) == ("avif", "medium")
    assert manifest.formats[0].srcset == "/medium.avif 1080w, /large.avif 1620w, /original.avif 3000w"
    # The upright source is the `original` rendition, whatever the catalog says of the download.
    wide = build_manifest(
        _record([("original", "webp", 2000, 3000), ("large", "webp", 1500, 2250)]), lambda r: r.pinned_path
    )
    assert (wide.width, wide.height, wide.aspect_ratio) == (2000, 3000, 0.6667)
    assert (wide.fallback.size, wide.fallback.width) == ("large", 1500)


def test_a_crop_no_longer_configured_is_still_listed_by_name_and_never_in_a_srcset() -> None:
    manifest = build_manifest(
        _record([("original", "webp", 640, 360), ("small", "webp", 640, 360), ("banner", "webp", 758, 140)]),
        lambda r: r.pinned_path,
    )
    assert manifest.formats[0].srcset == "/small.webp 640w"  # one width once, the smaller size kept
    assert [(c.size, c.width) for c in manifest.crops["banner"]] == [("banner", 758)]
