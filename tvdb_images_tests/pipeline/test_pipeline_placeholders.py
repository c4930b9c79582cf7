"""Placeholders through the real parts: `sync_images` stores them (PostgreSQL + SeaweedFS), the
metadata endpoint returns them, and `rerender_images` computes them for artwork rendered before them."""

from __future__ import annotations

import base64

import dagster as dg
import fast_thumbhash
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from serving.app import create_app
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.reliability_setup import (
    import_items,
    one_partition_items,
    production_settings,
    run_sync_images,
)

OLD_SIGNATURE = "webp-q85-m4-v2"  # what artwork rendered before placeholders carries


def _placeholders(catalog: Catalog) -> dict[int, tuple[str | None, str | None, str | None]]:
    with catalog.session() as session:
        return {a.id: (a.thumbhash, a.blurhash, a.dominant_color) for a in session.query(Artwork)}


def test_sync_stores_placeholders_the_api_returns_and_rerender_recomputes_them(
    postgres_catalog: Catalog,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    origin: LoopbackOrigin,
) -> None:
    settings = production_settings(
        postgres_catalog.url,
        seaweedfs,
        s3_bucket_names,
        ALLOWED_SOURCE_HOSTS=origin.netloc,
        FETCH_MAX_RETRIES=0,
    )
    photo, logo = one_partition_items(
        "people", [origin.url("/tvdb/fanart_a.jpg"), origin.url("/edge/clearlogo-transparent.png")]
    )
    import_items(postgres_catalog, [photo, logo])
    shard = _shard(postgres_catalog, photo.artwork_id)
    assert run_sync_images(settings, "people", shard).success

    stored = _placeholders(postgres_catalog)
    for artwork_id in (photo.artwork_id, logo.artwork_id):
        thumbhash, blurhash, colour = stored[artwork_id]
        assert thumbhash and blurhash and colour and colour.startswith("#")
    width, height, _ = fast_thumbhash.thumb_hash_to_rgba(base64.b64decode(stored[photo.artwork_id][0]))
    with postgres_catalog.session() as session:
        row = session.get(Artwork, photo.artwork_id)
        assert width / height == pytest.approx(row.source_width / row.source_height, rel=0.15)
    _, _, logo_pixels = fast_thumbhash.thumb_hash_to_rgba(base64.b64decode(stored[logo.artwork_id][0]))
    # The logo's transparency survived the whole pipeline (its keyed-out background is scattered
    # through it, so the ThumbHash keeps it partly transparent: see the imaging tests).
    assert min(logo_pixels[3::4]) < 160

    store = store_from_settings(settings)
    with TestClient(create_app(settings, catalog=postgres_catalog, store=store)) as client:
        body = client.get(f"/api/v1/images/artwork/{photo.artwork_id}").json()
    thumbhash, blurhash, colour = stored[photo.artwork_id]
    assert body["placeholders"] == {"thumbhash": thumbhash, "blurhash": blurhash, "dominant_color": colour}

    # Artwork rendered before placeholders existed: an older signature and no placeholders.
    with postgres_catalog.session() as session:
        session.execute(
            update(Artwork).values(
                render_signature=OLD_SIGNATURE, thumbhash=None, blurhash=None, dominant_color=None
            )
        )
    with TestClient(create_app(settings, catalog=postgres_catalog, store=store)) as client:
        assert client.get(f"/api/v1/images/artwork/{photo.artwork_id}").json()["placeholders"] is None
    job = build_definitions(settings).resolve_job_def("rerender_images")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=str(partition_key("people", shard))
    )
    assert result.success
    assert _placeholders(postgres_catalog) == stored  # the same pixels give the same placeholders
    with postgres_catalog.session() as session:
        signatures = {a.render_signature for a in session.query(Artwork)}
    assert signatures == {PipelineSettings.from_settings(settings).signature}


def _shard(catalog: Catalog, artwork_id: int) -> str:
    with catalog.session() as session:
        shard = session.get(Artwork, artwork_id).shard
    assert shard is not None
    return shard
