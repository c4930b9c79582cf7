"""The Dagster code location through Dagster's own test APIs: assets, checks, jobs, sensors, schedules.

Runs use a real (ephemeral) Dagster instance; the embedded setup runs everywhere, and the full sync
is repeated on real PostgreSQL + SeaweedFS S3.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from sqlalchemy import select

from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.partitions import MAX_PARTITIONS_PER_RUN, artwork_partitions
from tvdb_images.defs.requests import partition_ranges
from tvdb_images.defs.resources import resources_from_settings
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import SIZES, shard_of
from tvdb_images_tests.support import services
from tvdb_images_tests.support.builders import BAD_CAUSES, corpus_entries, import_entries
from tvdb_images_tests.support.origins import LoopbackOrigin


def _settings(origin: LoopbackOrigin, database_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": 0,
        "RENDER_WORKERS": 2,
    }
    values.update(extra)
    return Settings.model_validate(values)


@pytest.fixture
def embedded(tmp_path: Path, sqlite_catalog: Catalog, origin: LoopbackOrigin) -> Settings:
    return _settings(origin, sqlite_catalog.url, LOCAL_STORAGE_DIR=str(tmp_path / "storage"))


@pytest.fixture
def production(
    postgres_catalog: Catalog, origin: LoopbackOrigin, seaweedfs: services.SeaweedFS, s3_bucket_names
) -> Settings:
    return _settings(
        origin,
        postgres_catalog.url,
        **seaweedfs.storage_values(s3_bucket_names[Bucket.ORIGINALS], s3_bucket_names[Bucket.THUMBNAILS]),
    )


def _item_line(content_type: str, content_id: int, artwork_id: int, image_type: str, url: str) -> str:
    return json.dumps(
        {
            "content_type": content_type,
            "id": content_id,
            "artworks": [{"id": artwork_id, "type": image_type, "url": url}],
        }
    )


def test_definitions_load_and_are_complete() -> None:
    defs = build_definitions(Settings())
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} >= {
        "sync_images",
        "rerender_images",
        "cleanup_orphans",
        "sync_content_item",
        "sync_missing_artwork",
        "refresh_storage_stats",
        "revalidate_sources",
        "artwork_views_daily_job",
        "dedup_report_job",
    }
    assert {s.name for s in repository.schedule_defs} == {
        "nightly_sync",
        "weekly_cleanup",
        "daily_storage_stats",
        "daily_source_revalidation",
        "artwork_views_daily_schedule",
        "daily_dedup_report",
    }
    assert {s.name for s in repository.sensor_defs} == {
        "catalog_changes_sensor",
        "report_failed_runs",
        "storage_stats_freshness",
    }
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "missing_artwork",
        "source_images",
        "image_renditions",
        "orphaned_images",
        "storage_stats",
        "source_revalidation",
        "artwork_views_daily",
        "dedup_report",
    }
    assert len(artwork_partitions.get_partition_keys()) == 5 * 256
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {
        "catalog_objects_exist",
        "processed_artwork_complete",
        "no_stale_images",
        "artwork_views_complete",
    }


def test_a_run_process_keeps_its_loaded_code_out_of_full_collections(tmp_path: Path) -> None:
    # As `dagster api execute_run` loads the code location: Dagster first, then the module.
    probe = (
        "import gc, dagster\n"
        "import tvdb_images.definitions\n"
        "print(gc.get_freeze_count(), len(gc.get_objects(generation=2)))\n"
    )
    env = {**os.environ, "TVDB_IMAGES_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    frozen, left_for_full_collections = map(int, done.stdout.split())
    assert frozen > 100_000  # Dagster's and the code location's objects
    assert left_for_full_collections < frozen / 20


@pytest.mark.parametrize("setup", ["embedded", "production"])
def test_sync_images_over_a_partition_range(
    request: pytest.FixtureRequest, setup: str, origin: LoopbackOrigin, corpus_dir: Path
) -> None:
    settings: Settings = request.getfixturevalue(setup)
    catalog = Catalog(settings.resolved_database_url)
    entries = corpus_entries(corpus_dir, include_edge=False)
    import_entries(catalog, entries, origin.url("").rstrip("/"))
    with catalog.session() as session:
        partitions = queue.partitions_with_work(session, max_attempts=5)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("sync_images")
    # Grouped as the demo groups them: ranges of nearby partitions with work, partitions without work
    # between them (a run records ~9 events per partition it spans, whether it has work or not).
    ranges = partition_ranges(partitions, chunk=256, max_gap=8)
    assert len(ranges) < len(partitions)
    for start, end in ranges:
        result = job.execute_in_process(instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})
        assert result.success
        # The asset checks ran and passed for the run's partitions.
        evaluations = list(result.get_asset_check_evaluations())
        assert {e.check_name for e in evaluations} == {
            "catalog_objects_exist",
            "processed_artwork_complete",
            "no_stale_images",
        }
        assert all(e.passed for e in evaluations)

    # One materialization per partition, each carrying that partition's own counts.
    good = [e for e in entries.entries if not e.path.startswith("bad/")]
    renditions = instance.fetch_materializations(dg.AssetKey("image_renditions"), limit=5000).records
    by_partition = {r.partition_key: r.asset_materialization.metadata for r in renditions}
    assert len(by_partition) == len(renditions)  # each partition once
    assert {str(partition_key(ct, shard)) for ct, shard in partitions} < set(by_partition)  # and empty ones
    expected: Counter[str] = Counter(
        str(partition_key(e.content_type, shard_of(e.content_type, e.content_id))) for e in good
    )
    assert {k: m["succeeded"].value for k, m in by_partition.items() if m["succeeded"].value} == expected
    for metadata in by_partition.values():
        for name in ("summary", "failed", "bytes_in", "bytes_out", "size_in", "failures_by_cause"):
            assert name in metadata
        assert isinstance(metadata["failures_by_cause"], dg.TableMetadataValue)
        assert isinstance(metadata["time_by_phase"], dg.TableMetadataValue)
        assert isinstance(metadata["summary"], dg.MarkdownMetadataValue)
        assert (metadata["bytes_in"].value > 0) == (metadata["succeeded"].value > 0)
    busiest = max(by_partition.values(), key=lambda m: m["succeeded"].value)
    phases = {row.data["phase"]: row.data for row in busiest["time_by_phase"].value.records}
    assert set(phases) >= {"read_source", "render", "upload"}
    assert phases["render"]["cpu_seconds"] > 0
    assert all(row["cpu_seconds"] <= row["wall_seconds"] + 0.01 for row in phases.values())

    # A failure shows on the partition of the artwork that failed (at download or render), nowhere else.
    failures: dict[str, Counter[str]] = {}
    for stage in ("source_images", "image_renditions"):
        for record in instance.fetch_materializations(dg.AssetKey(stage), limit=5000).records:
            for row in record.asset_materialization.metadata["failures_by_cause"].value.records:
                failures.setdefault(record.partition_key, Counter())[row.data["cause"]] += row.data["count"]
    expected_failures: dict[str, Counter[str]] = {}
    for entry in entries.entries:
        if entry.path.startswith("bad/"):
            key = str(partition_key(entry.content_type, shard_of(entry.content_type, entry.content_id)))
            expected_failures.setdefault(key, Counter())[BAD_CAUSES[entry.path.split("/", 1)[1]]] += 1
    assert failures == expected_failures
    assert sum(failures.values(), Counter())["too_many_pixels"] == 2

    store = store_from_settings(settings)
    with catalog.session() as session:
        for entry in good:
            row = session.get(Artwork, entry.artwork_id)
            assert row.status == ArtworkStatus.PROCESSED
            assert len(row.renditions) == len(SIZES)
            thumb = next(r for r in row.renditions if r.size == "thumbnail")
            with Image.open(io.BytesIO(store.get(Bucket.THUMBNAILS, thumb.storage_key))) as image:
                assert image.format == "WEBP" and max(image.size) <= 300 and image.height <= 169
    catalog.dispose()

    # A second pass over the same partitions has nothing to do.
    start, end = ranges[0]
    again = job.execute_in_process(instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})
    assert again.success
    records = instance.fetch_materializations(dg.AssetKey("source_images"), limit=5000).records
    rerun = [r.asset_materialization.metadata for r in records if r.run_id == again.run_id]
    assert rerun and all(m["succeeded"].value == 0 and m["failed"].value == 0 for m in rerun)
    assert all("nothing to do" in m["summary"].value for m in rerun)


def test_asset_check_fails_when_an_object_goes_missing(embedded: Settings, origin: LoopbackOrigin) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    import_catalog_lines(catalog, [_item_line("series", 11, 110, "poster", origin.url("/tvdb/poster_a.jpg"))])
    pk = partition_key("series", shard_of("series", 11))
    defs = build_definitions(embedded)
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("sync_images").execute_in_process(instance=instance, partition_key=pk).success
    store = store_from_settings(embedded)
    with catalog.session() as session:
        key = session.get(Artwork, 110).renditions[0].storage_key
    store.delete(Bucket.THUMBNAILS, [key])
    result = defs.resolve_job_def("rerender_images").execute_in_process(
        instance=instance, partition_key=pk, raise_on_error=False
    )
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "catalog_objects_exist"
    )
    assert not evaluation.passed
    assert evaluation.metadata["missing"].value == 1
    catalog.dispose()


def test_sync_content_item_and_missing_artwork_jobs(embedded: Settings, origin: LoopbackOrigin) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    import_catalog_lines(
        catalog,
        [
            _item_line("movies", 21, 210, "poster", origin.url("/tvdb/poster_b.jpg")),
            _item_line("movies", 22, 220, "poster", origin.url("/tvdb/poster_a.jpg")),
            _item_line("people", 23, 230, "image", origin.url("/tvdb/person_a.jpg")),
        ],
    )
    defs = build_definitions(embedded)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("sync_content_item").execute_in_process(
        instance=instance,
        run_config={
            "ops": {"sync_content_item_op": {"config": {"content_type": "movies", "content_id": 21}}}
        },
    )
    assert result.success
    with catalog.session() as session:
        statuses = dict(session.execute(select(Artwork.id, Artwork.status)).all())
    assert statuses == {210: "processed", 220: "pending", 230: "pending"}

    result = defs.resolve_job_def("sync_missing_artwork").execute_in_process(
        instance=instance,
        run_config={"ops": {"sync_missing_artwork_op": {"config": {"content_type": "people", "limit": 5}}}},
    )
    assert result.success
    with catalog.session() as session:
        statuses = dict(session.execute(select(Artwork.id, Artwork.status)).all())
    assert statuses == {210: "processed", 220: "pending", 230: "processed"}

    unknown_type = {"content_type": "shows", "content_id": 1}
    with pytest.raises(dg.DagsterInvalidConfigError, match="content_type"):  # refused at launch
        defs.resolve_job_def("sync_content_item").execute_in_process(
            instance=instance, run_config={"ops": {"sync_content_item_op": {"config": unknown_type}}}
        )
    catalog.dispose()


def test_a_launchpad_override_reaches_the_runs_renditions(embedded: Settings, origin: LoopbackOrigin) -> None:
    """`resources: image_pipeline: config:` in a run's config changes that run's encoder, and only it:
    its renditions carry the overridden quality in their signature, the next run's the setting's."""
    catalog = Catalog(embedded.resolved_database_url)
    import_catalog_lines(
        catalog,
        [
            _item_line("movies", 61, 610, "poster", origin.url("/tvdb/poster_a.jpg")),
            _item_line("movies", 62, 620, "poster", origin.url("/tvdb/poster_b.jpg")),
        ],
    )
    defs = build_definitions(embedded)
    job = defs.resolve_job_def("sync_content_item")
    instance = dg.DagsterInstance.ephemeral()

    def sync(content_id: int, overrides: dict) -> None:
        run_config = {
            "ops": {"sync_content_item_op": {"config": {"content_type": "movies", "content_id": content_id}}},
            "resources": {"image_pipeline": {"config": overrides}} if overrides else {},
        }
        assert job.execute_in_process(instance=instance, run_config=run_config).success

    sync(61, {"image_quality": 60, "webp_method": 6, "render_workers": 1})
    sync(62, {})
    with catalog.session() as session:
        artworks = session.scalars(select(Artwork)).all()
        signatures = {a.id: {r.render_signature for r in a.renditions} for a in artworks}
    assert signatures[610] and all(s.startswith("webp-q60-m6-") for s in signatures[610]), signatures
    assert signatures[620] and all(s.startswith("webp-q85-m4-") for s in signatures[620]), signatures
    catalog.dispose()


def test_catalog_changes_sensor_requests_only_affected_partitions(
    embedded: Settings, origin: LoopbackOrigin
) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    defs = build_definitions(embedded)
    sensor = defs.get_sensor_def("catalog_changes_sensor")
    resources = resources_from_settings(embedded)
    instance = dg.DagsterInstance.ephemeral()

    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        assert isinstance(sensor(context), dg.SkipReason)  # empty catalog

    import_catalog_lines(
        catalog,
        [
            _item_line("series", 31, 310, "poster", origin.url("/tvdb/poster_a.jpg")),
            _item_line("episodes", 32, 320, "image", origin.url("/tvdb/episode_a.jpg")),
        ],
    )
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    requests = result.run_requests
    ranges = {(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests}
    series_key = str(partition_key("series", shard_of("series", 31)))
    episodes_key = str(partition_key("episodes", shard_of("episodes", 32)))
    assert ranges == {(series_key, series_key), (episodes_key, episodes_key)}
    cursor = result.cursor
    assert datetime.fromisoformat(cursor) <= datetime.now(UTC)

    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        assert isinstance(sensor(context), dg.SkipReason)  # nothing new since the watermark

    # The requested runs sync those two; then one more item arrives.
    pk_run = defs.resolve_job_def("sync_images")
    for request in requests:
        assert pk_run.execute_in_process(instance=instance, tags=request.tags).success
    import_catalog_lines(catalog, [_item_line("people", 33, 330, "image", origin.url("/tvdb/person_b.jpg"))])
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = sensor(context)
    people_key = str(partition_key("people", shard_of("people", 33)))
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests] == [
        (people_key, people_key)
    ]
    assert result.cursor > cursor
    catalog.dispose()


def test_schedules(embedded: Settings, origin: LoopbackOrigin) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    defs = build_definitions(embedded)
    resources = resources_from_settings(embedded)
    nightly = defs.get_schedule_def("nightly_sync")
    tick = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    with dg.build_schedule_context(resources=resources, scheduled_execution_time=tick) as context:
        assert isinstance(nightly.evaluate_tick(context).skip_message, str)
    lines = [
        _item_line("series", 100 + i, 1000 + i, "poster", origin.url("/tvdb/poster_a.jpg")) for i in range(40)
    ]
    import_catalog_lines(catalog, lines)
    with dg.build_schedule_context(resources=resources, scheduled_execution_time=tick) as context:
        requests = nightly.evaluate_tick(context).run_requests
    shards = {shard_of("series", 100 + i) for i in range(40)}
    # Grouped into at most one range per chunk of MAX_PARTITIONS_PER_RUN shards, covering all with work.
    assert 1 <= len(requests) <= 4
    covered = set()
    keys = [str(partition_key("series", s)) for s in sorted(shards)]
    all_keys = [str(k) for k in artwork_partitions.get_partition_keys()]
    for request in requests:
        start, end = (
            all_keys.index(request.tags[RANGE_START_TAG]),
            all_keys.index(request.tags[RANGE_END_TAG]),
        )
        assert end - start < MAX_PARTITIONS_PER_RUN
        covered |= set(all_keys[start : end + 1])
    assert set(keys) <= covered
    assert all(r.run_key and r.run_key.startswith("nightly:2026-11-28") for r in requests)

    weekly = defs.get_schedule_def("weekly_cleanup")
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        cleanup = weekly.evaluate_tick(context).run_requests
    assert len(cleanup) == 5 * 256 // MAX_PARTITIONS_PER_RUN
    assert all(r.run_config["ops"]["orphaned_images"]["config"]["dry_run"] is False for r in cleanup)
    catalog.dispose()


def test_cleanup_job_dry_run_then_for_real(embedded: Settings, origin: LoopbackOrigin) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    import_catalog_lines(
        catalog, [_item_line("seasons", 41, 410, "poster", origin.url("/tvdb/poster_progressive.jpg"))]
    )
    pk = partition_key("seasons", shard_of("seasons", 41))
    defs = build_definitions(embedded)
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("sync_images").execute_in_process(instance=instance, partition_key=pk).success
    store = store_from_settings(embedded)
    with catalog.session() as session:
        path = session.get(Artwork, 410).storage_path
    store.put(Bucket.THUMBNAILS, f"{path}/999/large.webp", b"orphan", content_type="image/webp")

    def run(dry_run: bool) -> dict:
        config = {"ops": {"orphaned_images": {"config": {"dry_run": dry_run, "grace_hours": 0}}}}
        result = defs.resolve_job_def("cleanup_orphans").execute_in_process(
            instance=instance, partition_key=pk, run_config=config
        )
        assert result.success
        record = instance.fetch_materializations(dg.AssetKey("orphaned_images"), limit=1).records[0]
        return {k: v.value for k, v in record.asset_materialization.metadata.items()}

    dry = run(True)
    assert (dry["orphans_found"], dry["would_delete"], dry["dry_run"]) == (1, 1, True)
    assert dry["bytes_that_would_be_freed"] == len(b"orphan") and "bytes_freed" not in dry
    assert dry["examples"] == f"- `tvdb-thumbnails/{path}/999/large.webp`"  # the real bucket name
    assert store.head(Bucket.THUMBNAILS, f"{path}/999/large.webp") is not None
    real = run(False)
    assert (real["orphans_found"], real["deleted"], real["bytes_freed"]) == (1, 1, len(b"orphan"))
    assert "bytes_that_would_be_freed" not in real
    assert store.head(Bucket.THUMBNAILS, f"{path}/999/large.webp") is None
    assert real["objects_referenced"] == len(SIZES) + 1
    catalog.dispose()


def test_storage_stats_asset(embedded: Settings, origin: LoopbackOrigin) -> None:
    catalog = Catalog(embedded.resolved_database_url)
    import_catalog_lines(
        catalog, [_item_line("episodes", 51, 510, "image", origin.url("/tvdb/episode_a.jpg"))]
    )
    defs = build_definitions(embedded)
    instance = dg.DagsterInstance.ephemeral()
    pk = partition_key("episodes", shard_of("episodes", 51))
    assert defs.resolve_job_def("sync_images").execute_in_process(instance=instance, partition_key=pk).success
    assert defs.resolve_job_def("refresh_storage_stats").execute_in_process(instance=instance).success
    record = instance.fetch_materializations(dg.AssetKey("storage_stats"), limit=1).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["total_objects"].value == len(SIZES) + 1
    rows = metadata["renditions"].value.records
    assert {row.data["size"] for row in rows} == set(SIZES)
    assert all(row.data["content_type"] == "episodes" for row in rows)
    catalog.dispose()


def test_run_failure_sensor_logs_the_partition(embedded: Settings, caplog: pytest.LogCaptureFixture) -> None:
    defs = build_definitions(
        embedded.model_copy(
            update={
                "storage_backend": "s3",
                "s3_endpoint_url": "http://127.0.0.1:9",
                "s3_access_key_id": "key",
                "s3_secret_access_key": "secret",
            }
        )
    )
    instance = dg.DagsterInstance.ephemeral()
    pk = partition_key("movies", "0a")
    result = defs.resolve_job_def("sync_images").execute_in_process(
        instance=instance, partition_key=pk, raise_on_error=False
    )
    assert not result.success  # object storage unreachable: the run fails instead of recording bad rows
    failure_event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    sensor = defs.get_sensor_def("report_failed_runs")
    context = dg.build_run_status_sensor_context(
        sensor_name="report_failed_runs",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure_event,
    ).for_run_failure()
    with caplog.at_level("ERROR"):
        sensor(context)
    assert any("movies|0a" in message and result.run_id in message for message in caplog.messages)


def test_workspace_yaml_loads_the_code_location() -> None:
    """`dagster dev -w workspace.yaml` loads: the same check Dagster's CLI runs."""
    import subprocess
    import sys

    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful for code location tvdb_images" in result.stderr + result.stdout


def test_partition_ranges_group_by_chunk_and_split_at_gaps() -> None:
    def key(shard: str) -> str:
        return str(partition_key("series", shard))

    partitions = [("series", s) for s in ("00", "01", "05", "3f", "40", "41", "a0")]
    assert partition_ranges(partitions, chunk=64) == [
        (key("00"), key("3f")),
        (key("40"), key("41")),
        (key("a0"), key("a0")),
    ]
    assert MAX_PARTITIONS_PER_RUN == 256  # by default, every shard of a content type in one range
    assert partition_ranges(partitions) == [(key("00"), key("a0"))]
    assert partition_ranges(partitions, chunk=128) == [(key("00"), key("41")), (key("a0"), key("a0"))]
    assert partition_ranges(partitions, chunk=256, max_gap=8) == [
        (key("00"), key("05")),
        (key("3f"), key("41")),
        (key("a0"), key("a0")),
    ]
    mixed = [("movies", "10"), ("series", "10")]
    assert partition_ranges(mixed) == [
        (str(partition_key("movies", "10")),) * 2,
        (key("10"), key("10")),
    ]
