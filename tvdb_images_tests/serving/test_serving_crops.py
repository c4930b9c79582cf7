"""Crop renditions end to end on the production parts (PostgreSQL + SeaweedFS S3): a real sync with
CROP_RENDITIONS stores each crop beside the five sizes, the image endpoints serve it by name, the
metadata gives its window, and changing the crops renders exactly the configured ones again."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import ConfigError, Settings, load_settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.registry import parse_crop_renditions
from tvdb_images.storage import Bucket, ObjectStore, store_from_settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.images.subjects import encoded, kept, subject_picture
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.serving_data import base_values, catalog_lines, s3_values

CROPS = "card:342x513,still:400x225,avatar:300x300"
BOXES = {"card": (342, 513), "still": (400, 225), "avatar": (300, 300)}
FANART = 9101  # series 901's fanart: 1600x900, subject right of centre
PORTRAIT = 9102  # series 902's poster: 900x1400, subject near the top
SMALL = 9103  # series 903's poster: 200x150, smaller than every crop box
PICTURES = {
    FANART: ("fanart.png", (1600, 900), (1300, 420), 150, 901, "fanart"),
    PORTRAIT: ("portrait.jpg", (900, 1400), (450, 230), 140, 902, "poster"),
    SMALL: ("small.png", (200, 150), (150, 75), 30, 903, "poster"),
}


class CropData(NamedTuple):
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    masks: dict[int, object]


@pytest.fixture(scope="module")
def crop_data(
    tmp_path_factory: pytest.TempPathFactory, postgres_template: str, seaweedfs: services.SeaweedFS
) -> Iterator[CropData]:
    root: Path = tmp_path_factory.mktemp("crop-origin")
    masks = {}
    for artwork_id, (name, size, centre, radius, _, _) in PICTURES.items():
        picture = subject_picture(size, centre, radius, noisy=artwork_id == FANART)
        (root / name).write_bytes(encoded(picture.image, "JPEG" if name.endswith(".jpg") else "PNG"))
        masks[artwork_id] = picture.mask
    name = services.unique_name("tvdb_images_crops")
    url = services.create_database(name, template=postgres_template)
    with LoopbackOrigin(root) as origin:
        prefix = services.unique_name("crops").replace("_", "-")
        values = base_values(origin, url) | s3_values(seaweedfs, prefix) | {"CROP_RENDITIONS": CROPS}
        settings = Settings.model_validate(values)
        catalog = Catalog(url)
        store = store_from_settings(settings)
        store.ensure_buckets()
        rows = [
            ("series", content_id, artwork_id, image_type, file, None, 10)
            for artwork_id, (file, _, _, _, content_id, image_type) in PICTURES.items()
        ]
        import_catalog_lines(catalog, catalog_lines(rows, origin))
        pipeline = PipelineSettings.from_settings(settings)
        with ImageFetcher(pipeline.fetch) as fetcher:
            sync_scope(catalog, store, fetcher, pipeline, Scope())
        yield CropData(settings, catalog, store, masks)
    catalog.dispose()
    services.drop_database(name)


def artwork(data: CropData, artwork_id: int) -> Artwork:
    with data.catalog.session() as session:
        row = session.get(Artwork, artwork_id)
        assert row is not None
        session.expunge_all()
        return row


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_sync_stores_each_crop_beside_the_sizes(crop_data: CropData) -> None:
    for artwork_id in PICTURES:
        row = artwork(crop_data, artwork_id)
        assert row.status == "processed", (row.failure_cause, row.failure_detail)
        by_size = {r.size: r for r in row.renditions}
        assert set(by_size) == {"original", "large", "medium", "small", "thumbnail", *BOXES}
        for name in BOXES:
            rendition = by_size[name]
            assert rendition.storage_key == f"{row.storage_path}/{name}.webp"
            image = decoded(crop_data.store.get(Bucket.THUMBNAILS, rendition.storage_key))
            assert image.size == (rendition.width, rendition.height)
            window = row.crop_windows[name]
            box = (window["x"], window["y"], window["width"], window["height"])
            assert kept(crop_data.masks[artwork_id], box) >= 0.9, (name, window)
            if artwork_id == SMALL:  # never upscaled: the box clamped to the source, in its shape
                assert image.width <= 200 and image.height <= 150
                assert (window["width"], window["height"]) == image.size
            else:
                assert image.size == BOXES[name]


def test_endpoints_serve_crops_by_name_and_refuse_unknown_names(crop_data: CropData) -> None:
    app = create_app(crop_data.settings, catalog=crop_data.catalog, store=crop_data.store)
    with TestClient(app) as client:
        response = client.get("/api/v1/images/series/901/fanart/card")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/webp"
        assert decoded(response.content).size == BOXES["card"]
        pinned = client.get(response.headers["content-location"])
        assert pinned.status_code == 200 and pinned.content == response.content
        assert client.get(f"/api/v1/images/artwork/{PORTRAIT}/still?format=webp").status_code == 200

        metadata = client.get(f"/api/v1/images/artwork/{FANART}").json()
        assert [s["size"] for s in metadata["sizes"]][5:] == ["avatar", "card", "still"]
        assert set(metadata["crops"]) == set(BOXES)
        assert metadata["crops"] == artwork(crop_data, FANART).crop_windows
        assert metadata["crops"]["card"]["height"] == 900 and metadata["crops"]["card"]["width"] == 600

        for bad in ("banner", "huge", "Card", "card.webp"):
            refused = client.get(f"/api/v1/images/series/901/fanart/{bad}")
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["code"] == "invalid_parameter" and refused.json()["parameter"] == "size"
        assert client.get(f"/api/v1/images/artwork/{FANART}/huge").status_code == 422

        schema = client.get("/openapi.json").json()
        documented = [
            parameter["schema"]
            for path in schema["paths"].values()
            for operation in path.values()
            for parameter in operation.get("parameters", [])
            if parameter["name"] == "size"
        ]
        sizes, crops = ({"$ref": "#/components/schemas/Size"}, {"type": "string", "enum": list(BOXES)})
        assert len(documented) == 4
        assert all(d["anyOf"][0] == sizes and d["anyOf"][1].items() >= crops.items() for d in documented)
        assert schema["components"]["schemas"]["Size"]["enum"] == [
            "original",
            "large",
            "medium",
            "small",
            "thumbnail",
        ]


def test_a_deployment_without_the_crop_does_not_serve_it(crop_data: CropData) -> None:
    settings = crop_data.settings.model_copy(update={"crop_renditions": ()})
    app = create_app(settings, catalog=crop_data.catalog, store=crop_data.store)
    with TestClient(app) as client:
        assert client.get("/api/v1/images/series/901/fanart/card").status_code == 422
        assert client.get("/api/v1/images/series/901/fanart/small").status_code == 200
        documented = client.get("/openapi.json").json()["paths"]["/api/v1/images/artwork/{artwork_id}/{size}"]
        assert documented["get"]["parameters"][1]["schema"] == {"$ref": "#/components/schemas/Size"}


def test_bad_crop_setting_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match=r"CROP_RENDITIONS: .*built-in size"):
        load_settings(CROP_RENDITIONS="small:300x300")


def test_changed_crops_render_exactly_the_configured_ones(crop_data: CropData) -> None:
    """Last test of the module: it changes the stored artwork. A `rerender_images` run (rerender_stale)
    with the new CROP_RENDITIONS renders every artwork again, into exactly the configured crops."""
    before = artwork(crop_data, FANART).render_signature
    changed = crop_data.settings.model_copy(update={"crop_renditions": parse_crop_renditions("card:300x450")})
    pipeline = PipelineSettings.from_settings(changed)
    assert pipeline.signature != before
    report = render_stored_sources(crop_data.catalog, crop_data.store, pipeline, Scope(), include_stale=True)
    assert report.succeeded == len(PICTURES), report.as_dict()
    row = artwork(crop_data, FANART)
    assert row.render_signature == pipeline.signature
    assert {r.size for r in row.renditions} == {"original", "large", "medium", "small", "thumbnail", "card"}
    assert set(row.crop_windows) == {"card"}
    card = next(r for r in row.renditions if r.size == "card")
    assert (card.width, card.height) == (300, 450)
    # Nothing left to do at that signature.
    again = render_stored_sources(crop_data.catalog, crop_data.store, pipeline, Scope(), include_stale=True)
    assert again.succeeded == 0
