"""Objects lost from storage (deleted by hand, lost by the store), on PostgreSQL + SeaweedFS.

What `catalog_objects_exist` finds missing, the next sync of that scope stores again: a `sync_images`
partition run re-downloads a lost source or re-renders lost renditions, and so does a single-item
sync. And `HEAD` answers exactly what `GET` would, status and headers, through a real
`tvdb-images serve`: for a present image, a lost object and unreachable storage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import httpx
import pytest

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.fetch import ImageFetcher
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.repair import find_missing
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import sync_scope
from tvdb_images.storage import Bucket, ObjectStore, store_from_settings
from tvdb_images.storage.layout import SIZES, original_key, shard_of
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.processes import ManagedProcess, start_api_server
from tvdb_images_tests.support.reliability_log import record

# (content_type, content_id, artwork_id, image_type, corpus file)
ITEMS = [
    ("series", 21, 2101, "poster", "poster_a.jpg"),
    ("series", 22, 2201, "fanart", "fanart_a.jpg"),
    ("movies", 23, 2301, "poster", "poster_b.jpg"),
]
# Headers that differ between any two responses, whatever the method.
PER_RESPONSE = {"date", "x-request-id"}


def _settings(
    origin: LoopbackOrigin, catalog: Catalog, seaweedfs: services.SeaweedFS, buckets: dict[Bucket, str]
) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": catalog.url,
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "FETCH_MAX_RETRIES": 0,
            "RENDER_WORKERS": 2,
            **seaweedfs.storage_values(buckets[Bucket.ORIGINALS], buckets[Bucket.THUMBNAILS]),
        }
    )


def _synced(settings: Settings, catalog: Catalog, origin: LoopbackOrigin) -> ObjectStore:
    """The three items imported and synced by the pipeline's own stages."""
    lines = [
        json.dumps(
            {
                "content_type": content_type,
                "id": content_id,
                "artworks": [{"id": artwork_id, "type": image_type, "url": origin.url(f"/tvdb/{name}")}],
            }
        )
        for content_type, content_id, artwork_id, image_type, name in ITEMS
    ]
    import_catalog_lines(catalog, lines)
    store = store_from_settings(settings)
    store.ensure_buckets()
    pipeline = PipelineSettings.from_settings(settings)
    with ImageFetcher(pipeline.fetch) as fetcher:
        _download, render = sync_scope(catalog, store, fetcher, pipeline, Scope())
    assert render.succeeded == len(ITEMS), render.as_dict()
    return store


def _keys(catalog: Catalog, artwork_id: int) -> tuple[str, dict[str, str]]:
    """The artwork's source key and its rendition keys by size."""
    with catalog.session() as session:
        artwork = session.get(Artwork, artwork_id)
        assert artwork is not None and artwork.storage_path and artwork.source_format
        source = original_key(artwork.storage_path, artwork.source_format)
        return source, {r.size: r.storage_key for r in artwork.renditions}


def _all_partitions() -> tuple[tuple[str, str], ...]:
    return tuple((ct, shard_of(ct, cid)) for ct, cid, *_ in ITEMS)


def test_what_the_check_finds_missing_the_next_sync_stores_again(
    postgres_catalog: Catalog,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    origin: LoopbackOrigin,
) -> None:
    settings = _settings(origin, postgres_catalog, seaweedfs, s3_bucket_names)
    store = _synced(settings, postgres_catalog, origin)
    lost_rendition = _keys(postgres_catalog, 2101)[1]["medium"]  # renditions lost, source kept
    lost_source = _keys(postgres_catalog, 2201)[0]  # source lost, renditions kept
    source_c, renditions_c = _keys(postgres_catalog, 2301)  # everything lost
    store.delete(Bucket.THUMBNAILS, [lost_rendition, *renditions_c.values()])
    store.delete(Bucket.ORIGINALS, [lost_source, source_c])
    expected = {
        f"thumbnails/{lost_rendition}",
        f"originals/{lost_source}",
        f"originals/{source_c}",
        *(f"thumbnails/{key}" for key in renditions_c.values()),
    }
    found = find_missing(postgres_catalog, store, Scope(partitions=_all_partitions()))
    assert set(found.keys) == expected

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    repaired_by: dict[int, str] = {}
    for content_type, content_id, artwork_id, *_ in ITEMS[1:]:  # partition runs, as a backfill does
        pk = partition_key(content_type, shard_of(content_type, content_id))
        result = defs.resolve_job_def("sync_images").execute_in_process(instance=instance, partition_key=pk)
        assert result.success
        discovery = next(
            m.metadata
            for m in result.asset_materializations_for_node("missing_artwork")
            if m.partition == str(pk)
        )
        assert discovery["lost_redownload"].value == 1
        check = next(
            e for e in result.get_asset_check_evaluations() if e.check_name == "catalog_objects_exist"
        )
        assert check.passed, check.metadata
        repaired_by[artwork_id] = f"sync_images {pk} (check after it: passed)"
    item = {"content_type": "series", "content_id": 21}  # one item, as the admin API launches it
    result = defs.resolve_job_def("sync_content_item").execute_in_process(
        instance=instance, run_config={"ops": {"sync_content_item_op": {"config": item}}}
    )
    assert result.success
    repaired_by[2101] = "sync_content_item series 21"

    after = find_missing(postgres_catalog, store, Scope(partitions=_all_partitions()))
    for case, artwork_id in (
        ("medium rendition deleted", 2101),
        ("source deleted", 2201),
        ("source and all renditions deleted", 2301),
    ):
        record(
            "lost_object",
            case=case,
            found_missing=len(found.by_artwork.get(artwork_id, [])),
            repaired_by=repaired_by[artwork_id],
            missing_after=len(after.by_artwork.get(artwork_id, [])),
            listed_objects=found.listed,
            listing_ms=round(found.seconds * 1000, 1),
        )
    assert after.keys == []
    for key in expected:
        bucket, _, name = key.partition("/")
        assert store.head(Bucket(bucket), name) is not None, key
    with postgres_catalog.session() as session:
        for _ct, _cid, artwork_id, *_ in ITEMS:
            artwork = session.get(Artwork, artwork_id)
            assert artwork is not None and artwork.status == ArtworkStatus.PROCESSED.value
            assert {r.size for r in artwork.renditions} == set(SIZES)


@pytest.fixture
def servers(
    postgres_catalog: Catalog,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    origin: LoopbackOrigin,
    tmp_path: Path,
) -> Iterator[tuple[ObjectStore, dict[str, str]]]:
    """Three `tvdb-images serve` processes on one synced catalog: bytes read whole into the byte cache,
    bytes streamed (no byte cache), and storage that does not answer."""
    settings = _settings(origin, postgres_catalog, seaweedfs, s3_bucket_names)
    store = _synced(settings, postgres_catalog, origin)
    env = {
        **os.environ,
        "DATABASE_URL": postgres_catalog.url,
        **seaweedfs.storage_values(s3_bucket_names[Bucket.ORIGINALS], s3_bucket_names[Bucket.THUMBNAILS]),
        "SERVING_CACHE_SECONDS": "0",
    }
    variants = {
        "cached": {},
        "streamed": {"SERVING_BYTE_CACHE_MB": "0"},
        "storage_down": {"S3_ENDPOINT_URL": "http://127.0.0.1:9"},
    }

    def start(name: str) -> tuple[ManagedProcess, int]:
        return start_api_server(
            f"serve-{name}", {**env, **variants[name]}, cwd=tmp_path, log_dir=tmp_path, timeout=120
        )

    with ThreadPoolExecutor(len(variants)) as pool:
        started = dict(zip(variants, pool.map(start, variants), strict=True))
    try:
        yield store, {name: f"http://127.0.0.1:{port}" for name, (_process, port) in started.items()}
    finally:
        for process, _port in started.values():
            process.stop()


def _answer(response: httpx.Response) -> tuple[int, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in PER_RESPONSE}
    if response.status_code >= 400:
        headers.pop("content-length", None)  # the error body names the request id
    return response.status_code, headers


def test_head_answers_exactly_what_get_would(
    servers: tuple[ObjectStore, dict[str, str]], postgres_catalog: Catalog
) -> None:
    store, bases = servers
    lost = _keys(postgres_catalog, 2301)[1]["small"]
    store.delete(Bucket.THUMBNAILS, [lost])
    paths = {
        "present": "/api/v1/images/series/21/poster/medium",
        "present_large": "/api/v1/images/series/22/fanart/large",
        "by_artwork": "/api/v1/images/artwork/2101/thumbnail?format=webp",
        "lost_object": "/api/v1/images/movies/23/poster/small",
        "unknown_item": "/api/v1/images/series/999/poster/small",
    }
    seen: dict[tuple[str, str], int] = {}
    with httpx.Client(timeout=30) as client:
        for server, base in bases.items():
            for case, path in paths.items():
                get = client.get(base + path)
                head = client.head(base + path)
                record(
                    "head_vs_get",
                    server=server,
                    case=case,
                    get=get.status_code,
                    head=head.status_code,
                    headers_equal=_answer(head)[1] == _answer(get)[1],
                    head_body_bytes=len(head.content),
                )
                assert head.content == b""
                assert _answer(head) == _answer(get), (server, case)
                seen[(server, case)] = get.status_code
                if get.status_code == 200:
                    assert int(get.headers["content-length"]) == len(get.content)
                    etag = get.headers["etag"]
                    conditional = {"If-None-Match": etag}
                    assert _answer(client.head(base + path, headers=conditional)) == _answer(
                        client.get(base + path, headers=conditional)
                    )
    for server in ("cached", "streamed"):
        assert seen[(server, "present")] == seen[(server, "present_large")] == 200
        assert seen[(server, "by_artwork")] == 200
        assert seen[(server, "lost_object")] == 404
    assert {seen[("storage_down", case)] for case in ("present", "lost_object", "by_artwork")} == {503}
    assert seen[("storage_down", "unknown_item")] == seen[("cached", "unknown_item")] == 404
