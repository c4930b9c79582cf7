"""A changed source that turns out bad, end to end on PostgreSQL + SeaweedFS through the serving API.

Series 9001 has two posters: 7001 (score 100, the item's image) and 7002 (score 10). 7001's URL is
changed to a file that is refused (an HTML page served as image/jpeg), and `sync_images` runs:

- STALE_IMAGE_POLICY=serve: the API keeps serving the last good image, marked stale in the artwork
  metadata (`stale`, `stale_since`, `failure_cause`) and with `X-Artwork-Stale: true`; the
  `no_stale_images` check counts it; `tvdb-images catalog stale` lists it; fixing the URL clears it.
- STALE_IMAGE_POLICY=withdraw: 7001's image is withdrawn at once: its metadata lists no sizes, its
  image URL answers 404 `image_not_stored` naming the cause, and the item's poster is 7002's image.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from serving.app import create_app
from tvdb_images import cli
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, Series
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import partition_key
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import production_settings
from tvdb_images_tests.support.services import SeaweedFS
from tvdb_images_tests.support.validating_origin import ValidatingOrigin

SERIES = 9001
MAIN, OTHER = 7001, 7002
POSTER = f"/api/v1/images/series/{SERIES}/poster/original"
HTML = b"<!DOCTYPE html><html><body>This artwork was moved</body></html>"


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _import(catalog: Catalog, origin: ValidatingOrigin, main_path: str) -> None:
    line = {
        "content_type": "series",
        "id": SERIES,
        "name": "Stale Test",
        "artworks": [
            {"id": MAIN, "type": "poster", "url": origin.url(main_path), "score": 100, "language": "eng"},
            {"id": OTHER, "type": "poster", "url": origin.url("/other.jpg"), "score": 10, "language": "eng"},
        ],
    }
    report = import_catalog_lines(catalog, [json.dumps(line)])
    assert not report.errors, report.errors


class Stack:
    def __init__(self, settings: Settings, catalog: Catalog, store) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.definitions = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.key = str(partition_key("series", shard_of("series", SERIES)))

    def sync(self) -> dict[str, dg.AssetCheckEvaluation]:
        job = self.definitions.resolve_job_def("sync_images")
        result = job.execute_in_process(instance=self.instance, partition_key=self.key)
        assert result.success
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    @contextmanager
    def api(self) -> Iterator[TestClient]:
        app = create_app(self.settings, catalog=self.catalog, store=self.store)
        with TestClient(app) as client:
            yield client

    def local_poster_url(self) -> str | None:
        with self.catalog.session() as session:
            return session.get(Series, SERIES).local_poster_url

    def local_image_url(self, artwork_id: int) -> str | None:
        with self.catalog.session() as session:
            return session.scalar(select(Artwork.local_image_url).where(Artwork.id == artwork_id))


@pytest.fixture
def origin() -> Iterator[ValidatingOrigin]:
    with ValidatingOrigin() as server:
        server.put("/main-v1.jpg", _jpeg((200, 40, 40), (500, 750)))
        server.put("/main-v2.jpg", _jpeg((40, 200, 40), (400, 600)))
        server.put("/other.jpg", _jpeg((40, 40, 200), (300, 450)))
        server.put("/moved.jpg", HTML, content_type="image/jpeg")
        yield server


def _stack(policy: str, postgres_catalog, seaweedfs, s3_bucket_names, s3_store, origin) -> Stack:
    settings = production_settings(
        postgres_catalog.url,
        seaweedfs,
        s3_bucket_names,
        ALLOWED_SOURCE_HOSTS=origin.netloc,
        FETCH_MAX_RETRIES=0,
        STALE_IMAGE_POLICY=policy,
        SERVING_CACHE_SECONDS=0,
        SERVING_BYTE_CACHE_MB=0,
    )
    stack = Stack(settings, postgres_catalog, s3_store)
    _import(postgres_catalog, origin, "/main-v1.jpg")
    checks = stack.sync()
    assert checks["no_stale_images"].passed
    return stack


def test_serve_policy_keeps_the_last_good_image_marked_stale_until_the_source_is_fixed(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    origin: ValidatingOrigin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = _stack("serve", postgres_catalog, seaweedfs, s3_bucket_names, s3_store, origin)
    with stack.api() as client:
        first = client.get(POSTER)
        assert first.status_code == 200 and first.headers["X-Artwork-Id"] == str(MAIN)
        assert "X-Artwork-Stale" not in first.headers
        assert client.get(f"/api/v1/images/artwork/{MAIN}").json()["stale"] is False
    good_url = stack.local_image_url(MAIN)
    assert stack.local_poster_url() == good_url

    _import(postgres_catalog, origin, "/moved.jpg")
    with stack.api() as client:
        pending = client.get(f"/api/v1/images/artwork/{MAIN}").json()
        assert pending["status"] == "pending" and pending["stale"] is True
    checks = stack.sync()

    stale_check = checks["no_stale_images"]
    assert not stale_check.passed and stale_check.severity == dg.AssetCheckSeverity.WARN
    assert stale_check.metadata["stale"].value == 1
    assert f"artwork {MAIN} of" in stale_check.metadata["stale_examples"].value
    assert checks["catalog_objects_exist"].passed
    with stack.api() as client:
        metadata = client.get(f"/api/v1/images/artwork/{MAIN}").json()
        assert metadata["source_url"] == origin.url("/moved.jpg")
        assert metadata["status"] == "failed" and metadata["failure_cause"] == "unsupported_format"
        assert metadata["stale"] is True and metadata["stale_since"] is not None
        assert {size["size"] for size in metadata["sizes"]} >= {"original", "thumbnail"}
        served = client.get(POSTER)
        assert served.status_code == 200 and served.headers["X-Artwork-Id"] == str(MAIN)
        assert served.headers["X-Artwork-Stale"] == "true"
        assert served.headers["ETag"] == first.headers["ETag"] and served.content == first.content
        assert client.get(f"/api/v1/images/artwork/{OTHER}").json()["stale"] is False
    assert stack.local_poster_url() == good_url

    monkeypatch.setenv("DATABASE_URL", postgres_catalog.url)
    assert cli.main(["catalog", "stale"]) == 0
    listing = capsys.readouterr().out
    assert f"{MAIN}\tseries/{SERIES}\tposter\tfailed\tunsupported_format" in listing
    assert "1 stale artwork (policy: STALE_IMAGE_POLICY=serve)" in listing

    # The operator fixes the source: the next sync renders it and the mark goes.
    _import(postgres_catalog, origin, "/main-v2.jpg")
    checks = stack.sync()
    assert checks["no_stale_images"].passed
    with stack.api() as client:
        metadata = client.get(f"/api/v1/images/artwork/{MAIN}").json()
        assert metadata["status"] == "processed" and metadata["stale"] is False
        assert metadata["stale_since"] is None and metadata["source_width"] == 400
        fixed = client.get(POSTER)
        assert fixed.status_code == 200 and "X-Artwork-Stale" not in fixed.headers
        assert fixed.headers["ETag"] != first.headers["ETag"]
    result = audit(postgres_catalog, s3_store, [("series", shard_of("series", SERIES))])
    record(
        "catalog_life",
        case="source URL changed to a refused file, STALE_IMAGE_POLICY=serve",
        setup="PostgreSQL + SeaweedFS, through the API",
        observed=(
            f"last good image served with X-Artwork-Stale: {served.headers['X-Artwork-Stale']},"
            f" no_stale_images counted {stale_check.metadata['stale'].value};"
            f" after the fix: stale {str(metadata['stale']).lower()}, new image served"
        ),
        missing_objects=len(result.missing),
        unreferenced_objects=len(result.unreferenced),
    )
    assert result.missing == [] and result.unsettled == []


def test_withdraw_policy_stops_serving_the_image_of_a_refused_source(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    origin: ValidatingOrigin,
) -> None:
    stack = _stack("withdraw", postgres_catalog, seaweedfs, s3_bucket_names, s3_store, origin)
    with stack.api() as client:
        assert client.get(POSTER).headers["X-Artwork-Id"] == str(MAIN)
        main_sizes = client.get(f"/api/v1/images/artwork/{MAIN}").json()["sizes"]
    with postgres_catalog.session() as session:
        main_keys = {r.storage_key for r in session.get(Artwork, MAIN).renditions}

    _import(postgres_catalog, origin, "/moved.jpg")
    checks = stack.sync()

    assert checks["no_stale_images"].passed  # nothing stale is served
    with stack.api() as client:
        metadata = client.get(f"/api/v1/images/artwork/{MAIN}").json()
        assert metadata["status"] == "failed" and metadata["failure_cause"] == "unsupported_format"
        assert metadata["sizes"] == [] and metadata["stale"] is False and main_sizes
        missing = client.get(f"/api/v1/images/artwork/{MAIN}/original")
        assert missing.status_code == 404
        assert missing.json()["code"] == "image_not_stored"
        assert missing.json()["details"]["failure_cause"] == "unsupported_format"
        poster = client.get(POSTER)
        assert poster.status_code == 200 and poster.headers["X-Artwork-Id"] == str(OTHER)
    assert stack.local_image_url(MAIN) is None
    assert stack.local_poster_url() == stack.local_image_url(OTHER)
    # The withdrawn renditions are no longer referenced: orphan cleanup removes them after its grace.
    result = audit(postgres_catalog, s3_store, [("series", shard_of("series", SERIES))])
    record(
        "catalog_life",
        case="source URL changed to a refused file, STALE_IMAGE_POLICY=withdraw",
        setup="PostgreSQL + SeaweedFS, through the API",
        observed=(
            f"image withdrawn: {len(metadata['sizes'])} sizes listed, /original answers"
            f" {missing.status_code} {missing.json()['code']}, the poster falls back to artwork"
            f" {poster.headers['X-Artwork-Id']}; its objects left to orphan cleanup"
        ),
        missing_objects=len(result.missing),
        unreferenced_objects=len(result.unreferenced),
    )
    assert result.missing == []
    assert {key for bucket, key in result.unreferenced if bucket == Bucket.THUMBNAILS} == main_keys
