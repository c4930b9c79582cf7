"""Source revalidation: a new file behind an unchanged URL is noticed, and nothing else costs a download.

A loopback origin of the test's own (`validating_origin`) sends ETag and Last-Modified, answers 304
to conditional GETs whose validators still match, and counts every request. The pipeline runs on the
embedded catalog and store; the Dagster `revalidate_sources` job runs on PostgreSQL + SeaweedFS.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from sqlalchemy import select, update

from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkRendition
from tvdb_images.catalog.scope import Scope
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.resources import ImagePipelineResource
from tvdb_images.defs.revalidation import daily_source_revalidation, shards_of_day
from tvdb_images.fetch import ImageFetcher
from tvdb_images.partition_keys import partition_key
from tvdb_images.pipeline.revalidate import due_before, revalidate_sources
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.pipeline.sync import revalidate_scope, sync_scope
from tvdb_images.storage import Bucket, ObjectStore
from tvdb_images.storage.layout import SHARDS
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import import_items, one_partition_items, production_settings
from tvdb_images_tests.support.services import SeaweedFS
from tvdb_images_tests.support.validating_origin import ValidatingOrigin


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (320, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _settings(origin: ValidatingOrigin, **values: object) -> Settings:
    return Settings.model_validate(
        {
            "ALLOWED_SOURCE_HOSTS": origin.netloc,
            "RENDER_WORKERS": 1,
            "FETCH_MAX_RETRIES": 0,
            **values,
        }
    )


class Setup:
    """A synced one-partition catalog on SQLite + local storage, its origin and its settings."""

    def __init__(self, tmp_path: Path, origin: ValidatingOrigin, paths: list[str], **values: object) -> None:
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        migrate.upgrade(url)
        self.catalog = Catalog(url)
        self.store: ObjectStore = LocalObjectStore(tmp_path / "storage")
        self.store.ensure_buckets()
        self.origin = origin
        self.items = one_partition_items("series", [origin.url(p) for p in paths])
        self.partition = ("series", _shard(self.items[0]))
        import_items(self.catalog, self.items)
        self.settings = PipelineSettings.from_settings(_settings(origin, **values))
        with ImageFetcher(self.settings.fetch) as fetcher:
            download, render = sync_scope(self.catalog, self.store, fetcher, self.settings, Scope())
        assert download.failed == 0 and render.succeeded == len(paths), (download.as_dict(), render.as_dict())
        origin.reset_counts()

    def revalidate(self, *, checked_before: datetime | None = None, render: bool = True):
        with ImageFetcher(self.settings.fetch) as fetcher:
            if render:
                return revalidate_scope(
                    self.catalog, self.store, fetcher, self.settings, Scope(), checked_before=checked_before
                )
            report = revalidate_sources(
                self.catalog, self.store, fetcher, self.settings, Scope(), checked_before=checked_before
            )
            return report, None

    def rows(self) -> dict[str, Artwork]:
        with self.catalog.session() as session:
            return {row.source_url: row for row in session.scalars(select(Artwork))}


def _shard(item) -> str:
    from tvdb_images.storage.layout import shard_of

    return shard_of(item.content_type, item.content_id)


def _stored_renditions_match(store: ObjectStore, row: Artwork) -> None:
    """Every rendition row names an object whose bytes are exactly the ones it describes."""
    assert row.renditions
    for rendition in row.renditions:
        data = store.get(Bucket.THUMBNAILS, rendition.storage_key)
        assert hashlib.sha256(data).hexdigest() == rendition.checksum, rendition.storage_key
        assert rendition.source_checksum == row.source_checksum


@pytest.fixture
def origin():
    with ValidatingOrigin() as server:
        yield server


def test_download_records_validators_and_a_304_costs_no_download(tmp_path: Path, origin) -> None:
    for index in range(3):
        origin.put(f"/p{index}.jpg", jpeg((40 * index, 90, 160)))
    setup = Setup(tmp_path, origin, [f"/p{index}.jpg" for index in range(3)])
    before = setup.rows()
    for path in ("/p0.jpg", "/p1.jpg", "/p2.jpg"):
        row = before[origin.url(path)]
        assert row.source_etag == origin.resources[path].etag
        assert row.source_last_modified and row.source_last_modified.endswith("GMT")
        assert row.source_checked_at is not None

    report, render = setup.revalidate()

    assert origin.count("GET", status=304) == 3
    assert origin.count(status=200) == 0 and origin.count("HEAD") == 0
    assert report.outcomes == {"not_modified": 3} and report.requests == {"conditional_get": 3}
    assert report.bytes_in == 0 and report.objects_written == 0 and render.succeeded == 0
    after = setup.rows()
    for url, row in after.items():
        assert row.source_checked_at > before[url].source_checked_at
        assert row.source_checksum == before[url].source_checksum and row.status == "processed"


def test_new_bytes_behind_the_same_url_rerender_that_artwork_and_replace_its_objects(
    tmp_path: Path, origin: ValidatingOrigin
) -> None:
    paths = ["/a.jpg", "/b.jpg", "/c.jpg"]
    for index, path in enumerate(paths):
        origin.put(path, jpeg((200, 30 * index, 10)))
    setup = Setup(tmp_path, origin, paths)
    before = setup.rows()
    new = jpeg((10, 200, 90), size=(400, 300))
    origin.put("/b.jpg", new)

    report, render = setup.revalidate()

    assert report.outcomes == {"not_modified": 2, "changed": 1}
    assert origin.count("GET", status=304) == 2 and origin.count("GET", status=200, path="/b.jpg") == 1
    assert render.succeeded == 1
    after = setup.rows()
    changed = after[origin.url("/b.jpg")]
    assert changed.status == "processed" and changed.stale_since is None
    assert changed.source_checksum == hashlib.sha256(new).hexdigest()
    assert (changed.source_width, changed.source_height) == (400, 300)
    assert changed.source_etag == origin.resources["/b.jpg"].etag
    assert {r.checksum for r in changed.renditions}.isdisjoint(
        {r.checksum for r in before[origin.url("/b.jpg")].renditions}
    )
    assert setup.store.get(Bucket.ORIGINALS, changed.original_key) == new
    _stored_renditions_match(setup.store, changed)
    for path in ("/a.jpg", "/c.jpg"):
        row, old = after[origin.url(path)], before[origin.url(path)]
        assert [r.checksum for r in row.renditions] == [r.checksum for r in old.renditions]
        assert row.processed_at == old.processed_at
    result = audit(setup.catalog, setup.store, [setup.partition])
    assert result.missing == [] and result.unsettled == []


def test_identical_bytes_without_validators_change_nothing(tmp_path: Path, origin: ValidatingOrigin) -> None:
    origin.put("/plain.jpg", jpeg((1, 2, 3)), validators=False)
    setup = Setup(tmp_path, origin, ["/plain.jpg"], SOURCE_REVALIDATE_WITHOUT_VALIDATORS="get")
    before = setup.rows()[origin.url("/plain.jpg")]
    assert before.source_etag is None and before.source_last_modified is None

    report, render = setup.revalidate()

    assert report.outcomes == {"identical": 1} and report.requests == {"get": 1}
    assert origin.count("GET", status=200) == 1 and origin.count("HEAD") == 0
    assert report.objects_written == 0 and render.succeeded == 0
    after = setup.rows()[origin.url("/plain.jpg")]
    assert after.source_checksum == before.source_checksum and after.processed_at == before.processed_at
    assert [(r.storage_key, r.checksum, r.created_at) for r in after.renditions] == [
        (r.storage_key, r.checksum, r.created_at) for r in before.renditions
    ]
    assert after.source_checked_at > before.source_checked_at


def test_without_validators_head_compares_size_and_type_and_gets_only_what_changed(
    tmp_path: Path, origin: ValidatingOrigin
) -> None:
    paths = ["/h0.jpg", "/h1.jpg", "/h2.jpg", "/h3.jpg"]
    for index, path in enumerate(paths):
        origin.put(path, jpeg((60 * index, 60, 60)), validators=False)
    setup = Setup(tmp_path, origin, paths)  # SOURCE_REVALIDATE_WITHOUT_VALIDATORS defaults to head

    report, _ = setup.revalidate()
    assert report.outcomes == {"same_size_and_type": 4}
    assert origin.count("HEAD", status=200) == 4 and origin.count("GET") == 0

    origin.reset_counts()
    replacement = jpeg((250, 250, 0), size=(500, 260))
    origin.put("/h2.jpg", replacement, validators=False)
    report, render = setup.revalidate()
    assert report.outcomes == {"same_size_and_type": 3, "changed": 1}
    assert origin.count("HEAD") == 4 and origin.count("GET") == 1
    assert origin.count("GET", path="/h2.jpg") == 1 and render.succeeded == 1
    row = setup.rows()[origin.url("/h2.jpg")]
    assert row.source_checksum == hashlib.sha256(replacement).hexdigest()
    _stored_renditions_match(setup.store, row)


def test_last_modified_alone_is_sent_as_if_modified_since(tmp_path: Path, origin: ValidatingOrigin) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    origin.put("/lm.jpg", jpeg((9, 9, 9)), etag=False, last_modified=moment)
    setup = Setup(tmp_path, origin, ["/lm.jpg"])
    assert setup.rows()[origin.url("/lm.jpg")].source_last_modified == "Fri, 02 Jan 2026 03:04:05 GMT"

    report, _ = setup.revalidate()
    assert report.outcomes == {"not_modified": 1} and origin.count("GET", status=304) == 1

    origin.put("/lm.jpg", jpeg((99, 9, 9)), etag=False, last_modified=moment + timedelta(days=1))
    report, render = setup.revalidate()
    assert report.outcomes == {"changed": 1} and render.succeeded == 1


def test_only_sources_not_checked_within_the_period_are_due(tmp_path: Path, origin: ValidatingOrigin) -> None:
    for index in range(3):
        origin.put(f"/d{index}.jpg", jpeg((index, 100, 100)))
    setup = Setup(tmp_path, origin, [f"/d{index}.jpg" for index in range(3)], SOURCE_REVALIDATE_DAYS=7)
    with setup.catalog.session() as session:
        session.execute(
            update(Artwork)
            .where(Artwork.source_url == origin.url("/d1.jpg"))
            .values(source_checked_at=datetime.now(UTC) - timedelta(days=8))
        )

    report, _ = setup.revalidate(checked_before=due_before(setup.settings))

    assert report.outcomes == {"not_modified": 1}
    assert origin.count(path="/d1.jpg") == 1 and origin.count() == 1
    assert due_before(PipelineSettings.from_settings(_settings(origin, SOURCE_REVALIDATE_DAYS=0))) is None


def test_new_bytes_that_are_refused_leave_the_last_good_image_marked_stale(
    tmp_path: Path, origin: ValidatingOrigin
) -> None:
    origin.put("/s.jpg", jpeg((5, 50, 150)))
    setup = Setup(tmp_path, origin, ["/s.jpg"])
    good = setup.rows()[origin.url("/s.jpg")]
    origin.put("/s.jpg", b"<html><body>Service temporarily replaced</body></html>", content_type="image/jpeg")

    report, render = setup.revalidate()

    assert report.outcomes == {"refused": 1} and render.succeeded == 0
    row = setup.rows()[origin.url("/s.jpg")]
    assert row.status == "failed" and row.failure_cause and row.stale_since is not None
    assert [r.checksum for r in row.renditions] == [r.checksum for r in good.renditions]
    assert row.source_checksum == good.source_checksum and row.local_image_url == good.local_image_url
    assert setup.store.get(Bucket.ORIGINALS, row.original_key) == setup.store.get(
        Bucket.ORIGINALS, good.original_key
    )
    # Checked just now: not due again before a full period, but a stale artwork stays a candidate.
    assert setup.revalidate(checked_before=due_before(setup.settings))[0].attempted == 0

    origin.put("/s.jpg", jpeg((240, 240, 240), size=(330, 210)))
    report, render = setup.revalidate()
    assert report.outcomes == {"changed": 1} and render.succeeded == 1
    row = setup.rows()[origin.url("/s.jpg")]
    assert row.status == "processed" and row.stale_since is None and row.failure_cause is None
    _stored_renditions_match(setup.store, row)


def test_a_source_removed_at_the_origin_is_gone_and_stale(tmp_path: Path, origin: ValidatingOrigin) -> None:
    origin.put("/g.jpg", jpeg((1, 1, 200)))
    setup = Setup(tmp_path, origin, ["/g.jpg"], STALE_IMAGE_POLICY="withdraw")
    origin.remove("/g.jpg")

    report, _ = setup.revalidate()

    assert report.outcomes == {"refused": 1}
    row = setup.rows()[origin.url("/g.jpg")]
    # STALE_IMAGE_POLICY=withdraw: the image is no longer served; its objects are left to cleanup.
    assert row.status == "gone" and row.renditions == [] and row.local_image_url is None
    assert row.stale_since is None
    with setup.catalog.session() as session:
        assert session.scalars(select(ArtworkRendition)).all() == []


def test_daily_schedule_covers_every_shard_once_per_period() -> None:
    for period in (1, 7, 30, 300):
        covered = [shard for day in range(period) for shard in shards_of_day(1000 + day, period)]
        assert sorted(covered) == list(SHARDS), period
    resource = ImagePipelineResource(settings=Settings.model_validate({"SOURCE_REVALIDATE_DAYS": 30}))
    tick = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    resources = {"image_pipeline": resource}
    with dg.build_schedule_context(scheduled_execution_time=tick, resources=resources) as context:
        requests = daily_source_revalidation(context)
    shards = shards_of_day(tick.date().toordinal(), 30)
    assert len(requests) == 5  # one contiguous range per content type
    starts = sorted(r.tags["dagster/asset_partition_range_start"] for r in requests)
    assert all(start.endswith(shards[0]) for start in starts)
    assert all(r.tags["dagster/asset_partition_range_end"].endswith(shards[-1]) for r in requests)
    off = ImagePipelineResource(settings=Settings.model_validate({"SOURCE_REVALIDATE_DAYS": 0}))
    resources = {"image_pipeline": off}
    with dg.build_schedule_context(scheduled_execution_time=tick, resources=resources) as context:
        assert isinstance(daily_source_revalidation(context), dg.SkipReason)


def test_revalidate_sources_job_on_postgresql_and_seaweedfs(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    origin: ValidatingOrigin,
) -> None:
    paths = [f"/pg{index}.jpg" for index in range(4)]
    for index, path in enumerate(paths):
        origin.put(path, jpeg((30 * index, 200, 30)))
    items = one_partition_items("movies", [origin.url(p) for p in paths])
    import_items(postgres_catalog, items)
    shard = _shard(items[0])
    settings = production_settings(
        postgres_catalog.url,
        seaweedfs,
        s3_bucket_names,
        ALLOWED_SOURCE_HOSTS=origin.netloc,
        FETCH_MAX_RETRIES=0,
        SOURCE_REVALIDATE_DAYS=1,
    )
    definitions = build_definitions(settings)
    key = str(partition_key("movies", shard))
    instance = dg.DagsterInstance.ephemeral()
    assert (
        definitions.resolve_job_def("sync_images")
        .execute_in_process(instance=instance, partition_key=key)
        .success
    )
    with postgres_catalog.session() as session:
        before = {row.source_url: row for row in session.scalars(select(Artwork))}
        # Three are due (checked two days ago); one was checked just now.
        session.execute(
            update(Artwork)
            .where(Artwork.source_url != origin.url("/pg3.jpg"))
            .values(source_checked_at=datetime.now(UTC) - timedelta(days=2))
        )
    new = jpeg((255, 0, 128), size=(360, 240))
    origin.put("/pg0.jpg", new)
    origin.put("/pg3.jpg", jpeg((0, 0, 0)))  # changed, but not due: left for its own turn
    origin.reset_counts()

    result = definitions.resolve_job_def("revalidate_sources").execute_in_process(
        instance=instance, partition_key=key
    )

    assert result.success
    requests = {
        "304": origin.count("GET", status=304),
        "200": origin.count("GET", status=200),
        "not_due": origin.count(path="/pg3.jpg"),
    }
    assert origin.count("GET", status=304) == 2 and origin.count("GET", status=200) == 1
    assert origin.count(path="/pg3.jpg") == 0
    metadata = result.asset_materializations_for_node("source_revalidation")[0].metadata
    assert metadata["not_modified"].value == 2 and metadata["changed"].value == 1
    assert metadata["rendered"].value == 1
    with postgres_catalog.session() as session:
        after = {row.source_url: row for row in session.scalars(select(Artwork))}
        changed = after[origin.url("/pg0.jpg")]
        assert changed.status == "processed"
        assert changed.source_checksum == hashlib.sha256(new).hexdigest()
        _stored_renditions_match(s3_store, changed)
        for path in paths[1:]:
            assert [r.checksum for r in after[origin.url(path)].renditions] == [
                r.checksum for r in before[origin.url(path)].renditions
            ]
    assert s3_store.get(Bucket.ORIGINALS, changed.original_key) == new
    audited = audit(postgres_catalog, s3_store, [("movies", shard)])
    record(
        "catalog_life",
        case="revalidate_sources: 3 of 4 due, 1 new file behind its unchanged URL",
        setup="PostgreSQL + SeaweedFS",
        observed=(
            f"{requests['304']} x 304, {requests['200']} x 200, {requests['not_due']} to the source not due;"
            f" changed {metadata['changed'].value}, re-rendered one ({changed.status}), the others'"
            " renditions unchanged"
        ),
        missing_objects=len(audited.missing),
        unreferenced_objects=len(audited.unreferenced),
    )
    assert audited.missing == [] and audited.unreferenced == set() and audited.unsettled == []


def test_revalidation_goes_through_the_fetchers_guard(tmp_path: Path, origin: ValidatingOrigin) -> None:
    origin.put("/guarded.jpg", jpeg((70, 70, 70)))
    setup = Setup(tmp_path, origin, ["/guarded.jpg"])
    # The operator narrows ALLOWED_SOURCE_HOSTS: the loopback origin is no longer an allowed source.
    setup.settings = PipelineSettings.from_settings(
        _settings(origin, ALLOWED_SOURCE_HOSTS="artworks.thetvdb.com", MAX_IMAGE_FILE_SIZE_MB=1)
    )

    report, _ = setup.revalidate()

    assert report.outcomes == {"refused": 1} and origin.count() == 0
    row = setup.rows()[origin.url("/guarded.jpg")]
    assert row.failure_cause == "forbidden_host" and row.stale_since is not None and row.renditions


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STALE_IMAGE_POLICY", "keep"),
        ("SOURCE_REVALIDATE_WITHOUT_VALIDATORS", "options"),
        ("SOURCE_REVALIDATE_DAYS", "-1"),
    ],
)
def test_bad_revalidation_settings_stop_at_start_naming_the_variable(name: str, value: str) -> None:
    from tvdb_images.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as raised:
        load_settings(**{name: value})
    assert name in str(raised.value) and repr(value) in str(raised.value)
