"""Several output formats at once, on the real parts: PostgreSQL, SeaweedFS, the Dagster jobs and the
serving API. A sync with IMAGE_FORMATS=webp,avif stores every size in both formats side by side; the
API negotiates between them with `Vary: Accept`; dropping AVIF from the list and running
`rerender_images` then `cleanup_orphans` removes exactly the AVIF objects, and adding it back adds
exactly them, the WebP objects untouched throughout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.app import create_app
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket, ObjectStore, store_from_settings
from tvdb_images.storage.base import ObjectInfo
from tvdb_images.storage.layout import SIZES, partition_prefix, shard_of
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.waiting import wait_until

ITEM = ("series", 71)
ARTWORK = {710: ("poster", "/tvdb/poster_a.jpg"), 711: ("fanart", "/tvdb/fanart_a.jpg")}
BOTH, WEBP = "webp,avif", "webp"


def _settings(base: dict[str, object], formats: str) -> Settings:
    return Settings.model_validate({**base, "IMAGE_FORMATS": formats})


@pytest.fixture
def base(
    postgres_catalog: Catalog, origin: LoopbackOrigin, seaweedfs: services.SeaweedFS, s3_bucket_names
) -> dict[str, object]:
    return {
        "DATABASE_URL": postgres_catalog.url,
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": 0,
        "RENDER_WORKERS": 2,
        "SERVING_CACHE_SECONDS": 0,
        **seaweedfs.storage_values(s3_bucket_names[Bucket.ORIGINALS], s3_bucket_names[Bucket.THUMBNAILS]),
    }


@pytest.fixture
def imported(postgres_catalog: Catalog, origin: LoopbackOrigin) -> Catalog:
    line = {
        "content_type": ITEM[0],
        "id": ITEM[1],
        "artworks": [
            {"id": artwork_id, "type": image_type, "url": origin.url(path)}
            for artwork_id, (image_type, path) in ARTWORK.items()
        ],
    }
    import_catalog_lines(postgres_catalog, [json.dumps(line)])
    return postgres_catalog


PARTITION = partition_key(ITEM[0], shard_of(*ITEM))


def _run(
    settings: Settings, job: str, instance: dg.DagsterInstance, **config: object
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"orphaned_images": {"config": config}}} if config else None
    result = (
        build_definitions(settings)
        .resolve_job_def(job)
        .execute_in_process(instance=instance, partition_key=PARTITION, run_config=run_config)
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert job == "cleanup_orphans" or {e.check_name for e in evaluations} >= {
        "catalog_objects_exist",
        "processed_artwork_complete",
    }
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed, failed
    return result


def _listing(store: ObjectStore) -> dict[str, ObjectInfo]:
    return {obj.key: obj for obj in store.list(Bucket.THUMBNAILS, partition_prefix(ITEM[0], shard_of(*ITEM)))}


def _paths(catalog: Catalog) -> dict[int, str]:
    with catalog.session() as session:
        return dict(session.execute(select(Artwork.id, Artwork.storage_path)).all())


def _keys(paths: dict[int, str], extension: str) -> set[str]:
    return {f"{path}/{size}.{extension}" for path in paths.values() for size in SIZES}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def test_both_formats_are_stored_served_dropped_and_added_back_exactly(
    base: dict[str, object], imported: Catalog, instance: dg.DagsterInstance
) -> None:
    both = _settings(base, BOTH)
    store = store_from_settings(both)
    store.ensure_buckets()
    _run(both, "sync_images", instance)

    paths = _paths(imported)
    webp_keys, avif_keys = _keys(paths, "webp"), _keys(paths, "avif")
    stored = _listing(store)
    assert set(stored) == webp_keys | avif_keys  # every size in each format, side by side
    signature = PipelineSettings.from_settings(both).signature
    with imported.session() as session:
        for artwork in session.scalars(select(Artwork)):
            assert (artwork.status, artwork.render_signature) == (ArtworkStatus.PROCESSED, signature)
            assert {(r.size, r.format) for r in artwork.renditions} == {
                (size, f) for size in SIZES for f in ("webp", "avif")
            }
            # The seed's columns keep one URL per size: the first listed format's.
            assert artwork.local_image_url.endswith("/original.webp")
            assert artwork.local_thumbnail_url.endswith("/thumbnail.webp")
        rows = {(r.artwork_id, r.size, r.format): r for r in session.scalars(select(ArtworkRendition))}
    for (_, _, image_format), row in rows.items():
        assert row.render_signature.startswith(f"{image_format}-")
        assert stored[row.storage_key].size == row.bytes

    _check_negotiation(both, rows, avif_stored=True)

    # Drop AVIF: the rerender changes only the catalog, cleanup removes exactly the AVIF objects.
    _past_the_second_of(stored)  # so that a rewritten object would show a newer Last-Modified
    webp_only = _settings(base, WEBP)
    rerender = _run(webp_only, "rerender_images", instance)
    assert _objects_written(rerender) == 0
    cleanup = _run(webp_only, "cleanup_orphans", instance, dry_run=False, grace_hours=0)
    deleted = _materialized(cleanup, "orphaned_images")["deleted"]
    after_drop = _listing(store)
    assert set(after_drop) == webp_keys and deleted == len(avif_keys)
    assert _unchanged(stored, after_drop, webp_keys)
    with imported.session() as session:
        formats = set(session.scalars(select(ArtworkRendition.format)))
        signatures = set(session.scalars(select(Artwork.render_signature)))
    assert formats == {"webp"} and signatures == {PipelineSettings.from_settings(webp_only).signature}
    with imported.session() as session:
        rows = {(r.artwork_id, r.size, r.format): r for r in session.scalars(select(ArtworkRendition))}
    _check_negotiation(webp_only, rows, avif_stored=False)

    # Add it back: exactly the AVIF objects are written, the WebP ones left as they are.
    _past_the_second_of(stored)
    rerender = _run(both, "rerender_images", instance)
    assert _objects_written(rerender) == len(avif_keys)
    after_add = _listing(store)
    assert set(after_add) == webp_keys | avif_keys
    assert _unchanged(stored, after_add, webp_keys)
    cleanup = _run(both, "cleanup_orphans", instance, dry_run=False, grace_hours=0)
    assert _materialized(cleanup, "orphaned_images")["deleted"] == 0
    assert set(_listing(store)) == webp_keys | avif_keys


def _check_negotiation(settings: Settings, rows: dict, *, avif_stored: bool) -> None:
    """Each Accept header gets the format the rules name, the stored bytes, and `Vary: Accept`."""
    sent: set[str] = set()
    with TestClient(create_app(settings)) as client:
        for artwork_id, (image_type, _) in ARTWORK.items():
            for size in SIZES:
                url = f"/api/v1/images/{ITEM[0]}/{ITEM[1]}/{image_type}/{size}"
                webp = rows[(artwork_id, size, "webp")]
                avif = rows.get((artwork_id, size, "avif"))
                smaller = "avif" if avif is not None and avif.bytes < webp.bytes else "webp"
                expected = {
                    "image/avif,image/webp,*/*": smaller,  # both acceptable: the smaller encoding
                    "image/avif,image/webp;q=0.5": "avif" if avif_stored else "webp",
                    "image/webp": "webp",
                    "*/*": "webp",  # a wildcard promises nothing for AVIF
                    "image/*": "webp",
                    "image/png": "webp",  # nothing stored is acceptable: WebP rather than a 406
                    None: "webp",
                }
                for accept, image_format in expected.items():
                    headers = {"Accept": accept} if accept is not None else {}
                    answer = client.get(url, headers=headers)
                    assert answer.status_code == 200, (accept, answer.text)
                    assert answer.headers["content-type"] == f"image/{image_format}", (size, accept)
                    assert answer.headers["vary"] == "Accept"
                    sent.add(image_format)
                    chosen = rows[(artwork_id, size, image_format)]
                    assert hashlib.sha256(answer.content).hexdigest() == chosen.checksum
                    assert answer.headers["etag"] == f'"{chosen.checksum}"'
    assert sent == ({"webp", "avif"} if avif_stored else {"webp"})


def _past_the_second_of(listing: dict[str, ObjectInfo]) -> None:
    """Wait until an object written now would show a later Last-Modified (whole seconds in S3) than
    every listed one: what a fixed 1.1 s sleep ensured, without waiting when the runs in between took
    that long already."""
    newest = max(info.last_modified for info in listing.values())
    wait_until(lambda: datetime.now(UTC) >= newest + timedelta(seconds=1.1), 5, 0.05, "the clock stood")


def _unchanged(before: dict[str, ObjectInfo], after: dict[str, ObjectInfo], keys: set[str]) -> bool:
    return all(
        (after[key].size, after[key].last_modified, after[key].etag)
        == (before[key].size, before[key].last_modified, before[key].etag)
        for key in keys
    )


def _materialized(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    events = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key == dg.AssetKey(asset)
    ]
    assert len(events) == 1
    return {key: value.value for key, value in events[0].metadata.items()}


def _objects_written(result: dg.ExecuteInProcessResult) -> int:
    return int(_materialized(result, "image_renditions")["objects_written"])
