"""When the parts behind the API fail or the catalog holds something wrong: readiness says which part,
image requests answer with a clear error, and a bad key in the catalog never reaches storage."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from serving.app import create_app
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus, Series
from tvdb_images.config import Settings
from tvdb_images.storage import store_from_settings
from tvdb_images.storage.layout import artwork_storage_path, shard_of
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.serving_data import RecordingStore, ServedData


def test_healthz_and_readyz_when_everything_is_up(served: ServedData) -> None:
    with TestClient(create_app(served.settings, catalog=served.catalog, store=served.store)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]


def test_readyz_names_the_dependency_that_is_down(served: ServedData, tmp_path: Path) -> None:
    if served.settings.storage_backend == "s3":
        broken = store_from_settings(
            served.settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
        )
    else:
        broken = LocalObjectStore(tmp_path / "never-created")
    with TestClient(create_app(served.settings, catalog=served.catalog, store=broken)) as client:
        response = client.get("/readyz")
        image = client.get("/api/v1/images/series/101/poster/small")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is False and body["checks"]["storage"]["error"]
    if served.settings.storage_backend == "s3":
        assert image.status_code == 503 and image.json()["code"] == "storage_unavailable"
        assert image.headers["retry-after"]
    else:
        assert image.status_code == 404 and image.json()["code"] == "object_missing"

    dead_database = Catalog("postgresql://postgres@127.0.0.1:9/none")
    try:
        with TestClient(create_app(served.settings, catalog=dead_database, store=served.store)) as client:
            body = client.get("/readyz").json()
            stats = client.get("/api/v1/images/storage/stats")
    finally:
        dead_database.dispose()
    assert body["checks"]["database"]["ok"] is False and body["checks"]["storage"]["ok"] is True
    assert stats.status_code == 503 and stats.json()["code"] == "catalog_unavailable"
    assert stats.headers["retry-after"]


def _hand_made_artwork(catalog: Catalog, artwork_id: int, content_id: int, storage_key: str) -> None:
    """A processed artwork whose rendition row says `storage_key`, as a damaged catalog might."""
    path = artwork_storage_path("series", content_id, "poster", None)
    now = datetime.now(UTC)
    with catalog.session() as session:
        session.add(Series(id=content_id, name="damaged"))
        session.add(
            Artwork(
                id=artwork_id,
                content_type="series",
                content_id=content_id,
                image_type="poster",
                source_url="https://artworks.thetvdb.com/banners/x.jpg",
                shard=shard_of("series", content_id),
                storage_path=path,
                status=ArtworkStatus.PROCESSED.value,
                processed_at=now,
            )
        )
        session.add(
            ArtworkRendition(
                artwork_id=artwork_id,
                size="small",
                format="webp",
                storage_key=storage_key,
                url="file:///x",
                width=10,
                height=10,
                bytes=10,
                content_type="image/webp",
                checksum="0" * 64,
                source_checksum="1" * 64,
                render_signature="test",
            )
        )


def test_catalog_keys_outside_the_layout_never_reach_storage(
    sqlite_catalog: Catalog, local_store: LocalObjectStore
) -> None:
    _hand_made_artwork(sqlite_catalog, 9001, 91, "../../../../etc/passwd")
    _hand_made_artwork(
        sqlite_catalog, 9002, 92, f"{artwork_storage_path('series', 92, 'poster', None)}/small.webp"
    )
    recorder = RecordingStore(local_store)
    settings = Settings.model_validate(
        {"DATABASE_URL": sqlite_catalog.url, "LOCAL_STORAGE_DIR": str(local_store.root)}
    )
    with TestClient(create_app(settings, catalog=sqlite_catalog, store=recorder)) as client:
        outside = client.get("/api/v1/images/series/91/poster/small")
        assert outside.status_code == 500 and outside.json()["code"] == "invalid_storage_key"
        assert recorder.calls == []
        missing = client.get("/api/v1/images/series/92/poster/small")
    assert missing.status_code == 404 and missing.json()["code"] == "object_missing"
    assert [call[0] for call in recorder.calls] == ["open"]


def test_storage_settings_build_the_same_store_the_pipeline_wrote(embedded_data: ServedData) -> None:
    # The app built from settings alone (as `tvdb-images serve` does) reads what the pipeline stored.
    with TestClient(create_app(embedded_data.settings)) as client:
        response = client.get("/api/v1/images/series/101/poster/thumbnail")
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
