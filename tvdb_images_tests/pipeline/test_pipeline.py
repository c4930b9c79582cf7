"""The pipeline stages end to end over the whole generated corpus, on the embedded setup (SQLite + local
disk) and on the production one (real PostgreSQL + real SeaweedFS S3), with artwork served over
loopback; over the shared corpus too (embedded, marked `corpus`) when it is present."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from tvdb_images.catalog import queue, results
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import CONTENT_MODELS, Artwork, ArtworkRendition, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.fetch import ImageFetcher
from tvdb_images.imaging import fit_inside
from tvdb_images.pipeline.cleanup import clean_orphans
from tvdb_images.pipeline.download import download_sources
from tvdb_images.pipeline.render import render_stored_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import RENDITION_CACHE_CONTROL, Bucket, ObjectStore
from tvdb_images.storage.layout import SIZES, is_layout_key, partition_prefix
from tvdb_images_tests.support.builders import (
    BAD_CAUSES,
    CorpusCatalog,
    corpus_entries,
    import_entries,
    settings_for_origin,
)
from tvdb_images_tests.support.images import SHARED, corpus_root, external_corpus
from tvdb_images_tests.support.origins import LoopbackOrigin, respond, sequence

BOXES = {
    "original": None,
    "large": (1920, 1080),
    "medium": (1280, 720),
    "small": (640, 360),
    "thumbnail": (300, 169),
}


@dataclass
class Setup:
    catalog: Catalog
    store: ObjectStore
    name: str


@pytest.fixture(params=["embedded", "production"])
def setup(request: pytest.FixtureRequest) -> Setup:
    if request.param == "embedded":
        return Setup(
            request.getfixturevalue("sqlite_catalog"), request.getfixturevalue("local_store"), "embedded"
        )
    return Setup(
        request.getfixturevalue("postgres_catalog"), request.getfixturevalue("s3_store"), "production"
    )


def _sync(setup: Setup, settings: PipelineSettings, scope: Scope | None = None):
    scope = scope or Scope()
    with ImageFetcher(settings.fetch) as fetcher:
        download = download_sources(setup.catalog, setup.store, fetcher, settings, scope)
    render = render_stored_sources(setup.catalog, setup.store, settings, scope)
    return download, render


def _upright_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


FULL_SYNCS: list[object] = [("embedded", ""), ("production", "")]
if external_corpus() is not None:
    FULL_SYNCS.append(pytest.param("embedded", SHARED, id="embedded-shared", marks=pytest.mark.corpus))


@pytest.mark.parametrize(("setup", "root"), FULL_SYNCS, indirect=["setup"])
def test_full_sync_of_the_corpus(setup: Setup, root: str) -> None:
    corpus_dir = corpus_root(root)
    with LoopbackOrigin(corpus_dir) as origin:
        _check_full_sync(setup, origin, corpus_dir)


def _check_full_sync(setup: Setup, origin: LoopbackOrigin, corpus_dir: Path) -> None:
    entries = corpus_entries(corpus_dir)
    assert any(e.path.startswith("edge/") for e in entries.entries)
    assert any(e.path.startswith("bad/") for e in entries.entries)
    import_entries(setup.catalog, entries, origin.url("").rstrip("/"))
    settings = settings_for_origin(origin.netloc)

    download, render = _sync(setup, settings)

    good = [e for e in entries.entries if not e.path.startswith("bad/")]
    bad = [e for e in entries.entries if e.path.startswith("bad/")]
    assert download.succeeded + download.failed == len(entries.entries)
    assert render.succeeded == len(good), render.as_dict()
    assert sum(download.failures_by_cause.values()) + sum(render.failures_by_cause.values()) == len(bad)

    with setup.catalog.session() as session:
        for entry in good:
            row = session.get(Artwork, entry.artwork_id)
            assert row.status == ArtworkStatus.PROCESSED, (entry.path, row.failure_cause, row.failure_detail)
            assert row.processed_at is not None and row.attempts == 1
            source = (corpus_dir / entry.path).read_bytes()
            assert row.file_size == len(source)
            assert row.source_checksum == hashlib.sha256(source).hexdigest()
            # The unchanged source is in the originals bucket under the layout.
            assert setup.store.get(Bucket.ORIGINALS, row.original_key) == source

            renditions = {r.size: r for r in row.renditions}
            assert set(renditions) == set(SIZES)
            expected_source = _upright_size(corpus_dir / entry.path)
            for size, rendition in renditions.items():
                assert is_layout_key(rendition.storage_key)
                assert rendition.storage_key == f"{row.storage_path}/{size}.webp"
                data = setup.store.get(Bucket.THUMBNAILS, rendition.storage_key)
                assert hashlib.sha256(data).hexdigest() == rendition.checksum and len(data) == rendition.bytes
                with Image.open(io.BytesIO(data)) as image:
                    assert image.format == "WEBP"
                    assert image.size == (rendition.width, rendition.height)
                    assert image.size == fit_inside(*expected_source, BOXES[size])
                head = setup.store.head(Bucket.THUMBNAILS, rendition.storage_key)
                assert head is not None and head.content_type == "image/webp"
                assert rendition.url == setup.store.url(Bucket.THUMBNAILS, rendition.storage_key)
            assert row.local_image_url == renditions["original"].url
            assert row.local_thumbnail_url == renditions["thumbnail"].url

        for entry in bad:
            row = session.get(Artwork, entry.artwork_id)
            expected = BAD_CAUSES[entry.path.removeprefix("bad/")]
            assert (row.status, row.failure_cause) == (ArtworkStatus.FAILED, expected), (
                entry.path,
                row.failure_detail,
            )
            assert row.failure_detail and row.attempts == 1 and not row.failure_retryable
            assert row.local_image_url is None and row.renditions == []
            # Nothing stored for bad input, in either bucket.
            for bucket in Bucket:
                assert list(setup.store.list(bucket, row.storage_path + "/")) == []

        # Content rows point at their primary artwork's local copy.
        poster = session.get(Artwork, entries.by_path("tvdb/poster_a.jpg")[0].artwork_id)
        series = session.get(CONTENT_MODELS["series"], poster.content_id)
        assert series.local_poster_url == poster.local_image_url
        assert series.poster_url == poster.source_url


def test_s3_renditions_carry_cache_control(
    origin: LoopbackOrigin, postgres_catalog: Catalog, s3_store, corpus_dir
) -> None:
    entries = CorpusCatalog([e for e in corpus_entries(corpus_dir).entries if e.path == "tvdb/banner_a.jpg"])
    import_entries(postgres_catalog, entries, origin.url("").rstrip("/"))
    _sync(Setup(postgres_catalog, s3_store, "production"), settings_for_origin(origin.netloc))
    with postgres_catalog.session() as session:
        key = session.scalars(select(ArtworkRendition.storage_key)).first()
    head = s3_store.client.head_object(Bucket=s3_store.bucket_names[Bucket.THUMBNAILS], Key=key)
    assert head["CacheControl"] == RENDITION_CACHE_CONTROL
    assert head["ContentType"] == "image/webp"


def test_second_run_does_nothing_and_changes_nothing(
    setup: Setup, origin: LoopbackOrigin, corpus_dir: Path
) -> None:
    entries = CorpusCatalog(corpus_entries(corpus_dir, include_edge=False).entries[:6])
    import_entries(setup.catalog, entries, origin.url("").rstrip("/"))
    settings = settings_for_origin(origin.netloc)
    _sync(setup, settings)

    def snapshot() -> tuple[list, dict]:
        with setup.catalog.session() as session:
            rows = [
                (a.id, a.status, a.updated_at, a.attempts, a.processed_at)
                for a in session.scalars(select(Artwork).order_by(Artwork.id))
            ]
        objects = {
            (bucket, o.key): (o.size, o.last_modified)
            for bucket in Bucket
            for o in setup.store.list(bucket, "")
        }
        return rows, objects

    before = snapshot()
    hits_before = sum(origin.hits(f"/{e.path}") for e in entries.entries)
    download, render = _sync(setup, settings)
    assert (download.attempted, render.attempted) == (0, 0)
    assert snapshot() == before
    assert sum(origin.hits(f"/{e.path}") for e in entries.entries) == hits_before  # no download at all


def test_failures_are_retried_by_later_runs_up_to_the_limit(
    setup: Setup, origin: LoopbackOrigin, corpus_dir: Path
) -> None:
    data = (corpus_dir / "tvdb/person_a.jpg").read_bytes()
    origin.route(
        "/flaky.jpg", sequence(respond(500), respond(500), respond(200, data, {"Content-Type": "image/jpeg"}))
    )
    origin.route("/always-500.jpg", respond(500))
    origin.route("/gone.jpg", respond(404))
    lines = [
        json.dumps(
            {
                "content_type": "people",
                "id": i,
                "artworks": [{"id": i, "type": "image", "url": origin.url(p)}],
            }
        )
        for i, p in ((1, "/flaky.jpg"), (2, "/always-500.jpg"), (3, "/gone.jpg"))
    ]
    import_catalog_lines(setup.catalog, lines)
    settings = settings_for_origin(origin.netloc, FETCH_MAX_RETRIES=1, ARTWORK_MAX_ATTEMPTS=3)

    _sync(setup, settings)  # flaky: 500, 500 (one retry) -> failed, retryable
    with setup.catalog.session() as session:
        flaky, broken, gone = (session.get(Artwork, i) for i in (1, 2, 3))
        assert (flaky.status, flaky.failure_cause, flaky.failure_retryable, flaky.attempts) == (
            ArtworkStatus.FAILED,
            "server_error",
            True,
            1,
        )
        assert (gone.status, gone.failure_cause, gone.failure_retryable) == (
            ArtworkStatus.GONE,
            "gone",
            False,
        )
    assert origin.hits("/gone.jpg") == 1

    _sync(setup, settings)  # flaky answers now
    with setup.catalog.session() as session:
        assert session.get(Artwork, 1).status == ArtworkStatus.PROCESSED
        assert session.get(Artwork, 1).attempts == 2
    for _ in range(3):
        _sync(setup, settings)
    with setup.catalog.session() as session:
        broken = session.get(Artwork, 2)
        assert (broken.status, broken.attempts) == (ArtworkStatus.FAILED, 3)  # stopped at the limit
    assert origin.hits("/always-500.jpg") == 3 * 2  # three attempts, each with one in-run retry
    assert origin.hits("/gone.jpg") == 1  # never retried

    with setup.catalog.session() as session:
        assert queue.reset_failed(session, cause="server_error") == 1
    assert session is not None
    with setup.catalog.session() as session:
        assert session.get(Artwork, 2).status == ArtworkStatus.PENDING


def test_changed_url_is_downloaded_again_and_the_old_source_becomes_an_orphan(
    setup: Setup, origin: LoopbackOrigin, corpus_dir: Path
) -> None:
    line = '{{"content_type": "series", "id": 5, "artworks": [{{"id": 9, "type": "poster", "url": "{}"}}]}}'
    import_catalog_lines(setup.catalog, [line.format(origin.url("/tvdb/poster_a.jpg"))])
    settings = settings_for_origin(origin.netloc)
    _sync(setup, settings)
    with setup.catalog.session() as session:
        before = session.get(Artwork, 9)
        old_original, old_checksums = before.original_key, {r.size: r.checksum for r in before.renditions}

    import_catalog_lines(setup.catalog, [line.format(origin.url("/tvdb/clearlogo_a.png"))])
    download, render = _sync(setup, settings)
    assert (download.succeeded, render.succeeded) == (1, 1)
    with setup.catalog.session() as session:
        after = session.get(Artwork, 9)
        assert after.status == ArtworkStatus.PROCESSED
        assert after.original_key.endswith("original.png") and old_original.endswith("original.jpg")
        assert {r.size: r.checksum for r in after.renditions} != old_checksums
        assert len(after.renditions) == len(SIZES)
        shard = after.shard

    # The old .jpg source is unreferenced now: cleanup finds it, keeps it during the grace period, deletes it.
    kept = clean_orphans(
        setup.catalog, setup.store, [("series", shard)], grace=timedelta(hours=1), dry_run=False
    )
    assert (kept.orphans_found, kept.orphans_in_grace, kept.deleted) == (1, 1, 0)
    later = datetime.now(UTC) + timedelta(hours=2)
    dry = clean_orphans(
        setup.catalog, setup.store, [("series", shard)], grace=timedelta(hours=1), dry_run=True, now=later
    )
    assert (dry.orphans_found, dry.deleted) == (1, 0)
    assert setup.store.head(Bucket.ORIGINALS, old_original) is not None
    done = clean_orphans(
        setup.catalog, setup.store, [("series", shard)], grace=timedelta(hours=1), dry_run=False, now=later
    )
    assert done.deleted == 1 and done.bytes_freed == (corpus_dir / "tvdb/poster_a.jpg").stat().st_size
    assert setup.store.head(Bucket.ORIGINALS, old_original) is None
    with setup.catalog.session() as session:
        row = session.get(Artwork, 9)
        for rendition in row.renditions:
            assert setup.store.head(Bucket.THUMBNAILS, rendition.storage_key) is not None
        assert setup.store.head(Bucket.ORIGINALS, row.original_key) is not None


def test_cleanup_never_touches_referenced_or_foreign_objects(setup: Setup, origin: LoopbackOrigin) -> None:
    line = '{{"content_type": "movies", "id": 8, "artworks": [{{"id": 12, "type": "fanart", "url": "{}"}}]}}'
    import_catalog_lines(setup.catalog, [line.format(origin.url("/tvdb/episode_a.jpg"))])
    _sync(setup, settings_for_origin(origin.netloc))
    with setup.catalog.session() as session:
        row = session.get(Artwork, 12)
        shard, path = row.shard, row.storage_path
    prefix = partition_prefix("movies", shard)
    setup.store.put(Bucket.THUMBNAILS, f"{path}/9999/small.webp", b"stale", content_type="image/webp")
    setup.store.put(Bucket.THUMBNAILS, f"{prefix}notes.txt", b"operator's file", content_type="text/plain")
    far_future = datetime.now(UTC) + timedelta(days=30)
    report = clean_orphans(
        setup.catalog, setup.store, [("movies", shard)], grace=timedelta(0), dry_run=False, now=far_future
    )
    assert report.deleted == 1 and report.foreign_keys_ignored == 1
    assert report.objects_referenced == len(SIZES) + 1  # five renditions and the source
    assert setup.store.head(Bucket.THUMBNAILS, f"{prefix}notes.txt") is not None
    with setup.catalog.session() as session:
        for rendition in session.get(Artwork, 12).renditions:
            assert setup.store.head(Bucket.THUMBNAILS, rendition.storage_key) is not None


def test_rerender_after_a_quality_change(setup: Setup, origin: LoopbackOrigin) -> None:
    line = '{"content_type": "series", "id": 3, "artworks": [{"id": 30, "type": "fanart", "url": "URL"}]}'
    import_catalog_lines(setup.catalog, [line.replace("URL", origin.url("/tvdb/fanart_b.jpg"))])
    _sync(setup, settings_for_origin(origin.netloc, IMAGE_QUALITY=85))
    with setup.catalog.session() as session:
        before = {r.size: r.bytes for r in session.get(Artwork, 30).renditions}
        signature_before = session.get(Artwork, 30).render_signature
    lower = settings_for_origin(origin.netloc, IMAGE_QUALITY=40)
    # A plain sync does not re-render; the rerender stage picks up renditions from other settings.
    assert render_stored_sources(setup.catalog, setup.store, lower, Scope()).attempted == 0
    report = render_stored_sources(setup.catalog, setup.store, lower, Scope(), include_stale=True)
    assert report.succeeded == 1
    with setup.catalog.session() as session:
        row = session.get(Artwork, 30)
        after = {r.size: r.bytes for r in row.renditions}
        assert row.render_signature == lower.signature != signature_before
        assert all(after[size] < before[size] for size in ("original", "medium"))
        for rendition in row.renditions:
            assert len(setup.store.get(Bucket.THUMBNAILS, rendition.storage_key)) == rendition.bytes
    assert (
        render_stored_sources(setup.catalog, setup.store, lower, Scope(), include_stale=True).attempted == 0
    )


def test_avif_output(sqlite_catalog: Catalog, local_store, origin: LoopbackOrigin) -> None:
    line = '{"content_type": "episodes", "id": 4, "artworks": [{"id": 40, "type": "image", "url": "URL"}]}'
    import_catalog_lines(sqlite_catalog, [line.replace("URL", origin.url("/tvdb/episode_b.jpg"))])
    _sync(
        Setup(sqlite_catalog, local_store, "embedded"),
        settings_for_origin(origin.netloc, IMAGE_FORMAT="avif"),
    )
    with sqlite_catalog.session() as session:
        row = session.get(Artwork, 40)
        assert {r.format for r in row.renditions} == {"avif"}
        for rendition in row.renditions:
            assert rendition.storage_key.endswith(".avif") and rendition.content_type == "image/avif"
            with Image.open(io.BytesIO(local_store.get(Bucket.THUMBNAILS, rendition.storage_key))) as image:
                assert image.format == "AVIF" and image.size == (rendition.width, rendition.height)


def test_optimization_disabled_mirrors_the_source(
    sqlite_catalog: Catalog, local_store, origin: LoopbackOrigin
) -> None:
    line = '{"content_type": "people", "id": 6, "artworks": [{"id": 60, "type": "image", "url": "URL"}]}'
    import_catalog_lines(sqlite_catalog, [line.replace("URL", origin.url("/tvdb/person_b.jpg"))])
    settings = settings_for_origin(origin.netloc, ENABLE_IMAGE_OPTIMIZATION=False)
    _sync(Setup(sqlite_catalog, local_store, "embedded"), settings)
    with sqlite_catalog.session() as session:
        row = session.get(Artwork, 60)
        assert row.status == ArtworkStatus.PROCESSED and row.render_signature == "mirror"
        assert [r.size for r in row.renditions] == ["original"]
        assert row.local_image_url == local_store.url(Bucket.ORIGINALS, row.original_key)
    assert list(local_store.list(Bucket.THUMBNAILS, "")) == []


def test_storage_outage_is_recorded_as_retryable_and_nothing_is_recorded_as_stored(
    sqlite_catalog: Catalog, local_store, origin: LoopbackOrigin
) -> None:
    from tvdb_images.storage import StorageError

    class BrokenUploads:
        """The local store, with every rendition upload refused (a full disk, a dead S3)."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def put(self, bucket, key, data, **kwargs):
            if bucket == Bucket.THUMBNAILS and key.endswith("small.webp"):
                raise StorageError("simulated outage")
            return self.inner.put(bucket, key, data, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    line = '{"content_type": "series", "id": 2, "artworks": [{"id": 20, "type": "poster", "url": "URL"}]}'
    import_catalog_lines(sqlite_catalog, [line.replace("URL", origin.url("/tvdb/poster_b.jpg"))])
    settings = settings_for_origin(origin.netloc)
    broken = Setup(sqlite_catalog, BrokenUploads(local_store), "embedded")
    _, render = _sync(broken, settings)
    assert render.failures_by_cause == {"storage_error": 1}
    with sqlite_catalog.session() as session:
        row = session.get(Artwork, 20)
        # The source is stored: the artwork stays in the render queue and is never fetched again.
        assert (row.status, row.failure_retryable, row.local_image_url, row.renditions) == (
            ArtworkStatus.DOWNLOADED,
            True,
            None,
            [],
        )
    # The next run, with storage back, converges.
    _sync(Setup(sqlite_catalog, local_store, "embedded"), settings)
    with sqlite_catalog.session() as session:
        row = session.get(Artwork, 20)
        assert row.status == ArtworkStatus.PROCESSED and len(row.renditions) == len(SIZES)


def test_url_changed_while_a_sync_works_on_the_artwork(setup: Setup, origin: LoopbackOrigin) -> None:
    """An import that changes a URL mid-sync is not overwritten: the new URL is downloaded next run."""
    line = '{"content_type": "series", "id": 7, "artworks": [{"id": 70, "type": "poster", "url": "URL"}]}'
    import_catalog_lines(setup.catalog, [line.replace("URL", origin.url("/tvdb/poster_a.jpg"))])
    settings = settings_for_origin(origin.netloc)
    with ImageFetcher(settings.fetch) as fetcher:
        download_sources(setup.catalog, setup.store, fetcher, settings, Scope())
    # The proxy changes the URL after the download, before the render records its result.
    import_catalog_lines(setup.catalog, [line.replace("URL", origin.url("/tvdb/poster_b.jpg"))])
    with setup.catalog.session() as session:
        stale_task = queue.render_candidates(
            session, Scope(), signature=settings.signature, include_stale=False
        )
    assert stale_task == []  # pending again: nothing to render from the old source
    _sync(setup, settings)
    with setup.catalog.session() as session:
        row = session.get(Artwork, 70)
        assert row.status == ArtworkStatus.PROCESSED
        assert row.source_url.endswith("poster_b.jpg")
    assert origin.hits("/tvdb/poster_b.jpg") == 1


def test_render_result_for_an_old_url_does_not_mark_the_new_one_processed(
    sqlite_catalog: Catalog, local_store, origin: LoopbackOrigin
) -> None:
    line = '{"content_type": "movies", "id": 8, "artworks": [{"id": 80, "type": "poster", "url": "URL"}]}'
    import_catalog_lines(sqlite_catalog, [line.replace("URL", origin.url("/tvdb/poster_a.jpg"))])
    settings = settings_for_origin(origin.netloc)
    setup = Setup(sqlite_catalog, local_store, "embedded")
    with ImageFetcher(settings.fetch) as fetcher:
        download_sources(sqlite_catalog, local_store, fetcher, settings, Scope())
    with sqlite_catalog.session() as session:
        (task,) = queue.render_candidates(session, Scope(), signature=settings.signature, include_stale=False)
    # The URL changes while this task renders; its result must not mark the artwork processed.
    import_catalog_lines(sqlite_catalog, [line.replace("URL", origin.url("/tvdb/poster_b.jpg"))])
    from tvdb_images.pipeline import render as render_stage
    from tvdb_images.pipeline.report import StageReport

    outcome = render_stage._render_one(task, local_store, settings, StageReport(stage="render"))
    with sqlite_catalog.session() as session:
        results.record_renditions(session, task, outcome.renditions, signature=settings.signature)
    with sqlite_catalog.session() as session:
        assert session.get(Artwork, 80).status == ArtworkStatus.PENDING
    _sync(setup, settings)
    with sqlite_catalog.session() as session:
        assert session.get(Artwork, 80).status == ArtworkStatus.PROCESSED
