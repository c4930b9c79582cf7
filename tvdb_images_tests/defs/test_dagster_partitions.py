"""What Dagster records for each partition of a ranged run: its own materialization metadata and its
own check verdicts, read back through Dagster's instance APIs (what the UI reads).

Inputs are generated (no corpus): three artworks in two partitions of a 16-partition range, one of
them an empty download. The same run is made on the embedded setup and on PostgreSQL (catalog and
Dagster's deployed storage, events batched as the image sets) with SeaweedFS S3.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from PIL import Image

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork
from tvdb_images.config import Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.metadata import format_bytes, parse_run_totals
from tvdb_images.defs.partitions import artwork_partitions
from tvdb_images.partition_keys import RANGE_END_TAG, RANGE_START_TAG, partition_key
from tvdb_images.storage import Bucket, store_from_settings
from tvdb_images.storage.layout import SHARDS, shard_of
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin, respond
from tvdb_images_tests.support.stack import dagster_postgres_url, deployed_dagster_storage

RANGE = [str(partition_key("series", shard)) for shard in SHARDS[:16]]


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def ids_in_distinct_shards(count: int) -> list[int]:
    """Series ids whose shards fall in RANGE, each in a different shard."""
    found: dict[str, int] = {}
    for content_id in range(1, 10_000):
        shard = shard_of("series", content_id)
        if str(partition_key("series", shard)) in RANGE and shard not in found:
            found[shard] = content_id
            if len(found) == count:
                return list(found.values())
    raise AssertionError("no ids found")


class Scenario:
    """Item A (one poster) and item B (a poster, and a fanart whose download is empty)."""

    def __init__(self, origin: LoopbackOrigin) -> None:
        self.poster_a = jpeg(680, 1000, (200, 30, 30))
        self.poster_b = jpeg(500, 740, (30, 30, 200))
        origin.route("/a.jpg", respond(200, self.poster_a, {"Content-Type": "image/jpeg"}))
        origin.route("/b.jpg", respond(200, self.poster_b, {"Content-Type": "image/jpeg"}))
        origin.route("/empty.jpg", respond(200, b"", {"Content-Type": "image/jpeg"}))
        self.id_a, self.id_b = ids_in_distinct_shards(2)
        self.key_a = str(partition_key("series", shard_of("series", self.id_a)))
        self.key_b = str(partition_key("series", shard_of("series", self.id_b)))
        self.lines = [
            json.dumps(
                {
                    "content_type": "series",
                    "id": self.id_a,
                    "artworks": [{"id": 1, "type": "poster", "url": origin.url("/a.jpg")}],
                }
            ),
            json.dumps(
                {
                    "content_type": "series",
                    "id": self.id_b,
                    "artworks": [
                        {"id": 2, "type": "poster", "url": origin.url("/b.jpg")},
                        {"id": 3, "type": "fanart", "url": origin.url("/empty.jpg")},
                    ],
                }
            ),
        ]


@pytest.fixture
def generated_origin() -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin() as origin:
        yield origin


def _settings(origin: LoopbackOrigin, database_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": 0,
        "RENDER_WORKERS": 2,
    }
    return Settings.model_validate(values | extra)


@pytest.fixture
def embedded_setup(
    tmp_path: Path, sqlite_catalog: Catalog, generated_origin: LoopbackOrigin
) -> tuple[Settings, dg.DagsterInstance]:
    settings = _settings(generated_origin, sqlite_catalog.url, LOCAL_STORAGE_DIR=str(tmp_path / "storage"))
    return settings, dg.DagsterInstance.ephemeral()


@pytest.fixture
def production_setup(
    tmp_path: Path,
    postgres_catalog: Catalog,
    generated_origin: LoopbackOrigin,
    seaweedfs: services.SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Settings, dg.DagsterInstance]]:
    settings = _settings(
        generated_origin,
        postgres_catalog.url,
        **seaweedfs.storage_values(s3_bucket_names[Bucket.ORIGINALS], s3_bucket_names[Bucket.THUMBNAILS]),
    )
    name = services.unique_name("tvdb_images_dagster")
    url = dagster_postgres_url(services.create_database(name))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as the image sets it
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {"telemetry": {"enabled": False}, "storage": deployed_dagster_storage()}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = dg.DagsterInstance.from_config(str(home))
    yield settings, instance
    instance.dispose()
    services.drop_database(name)


def _metadata(instance: dg.DagsterInstance, asset: str, run_id: str) -> dict[str, dict]:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    mine = [r for r in records if r.run_id == run_id]
    assert len(mine) == len({r.partition_key for r in mine})  # one materialization per partition
    return {r.partition_key: r.asset_materialization.metadata for r in mine}


def _failures(metadata: dict) -> dict[str, int]:
    return {row.data["cause"]: row.data["count"] for row in metadata["failures_by_cause"].value.records}


def _check_statuses(instance: dg.DagsterInstance, check: str) -> dict[str, set[str]]:
    """Partitions by resolved status (passed, failed, skipped...), as the check's Partitions tab shows."""
    key = dg.AssetCheckKey(dg.AssetKey("image_renditions"), check)
    state = instance.event_log_storage.get_asset_check_state([(key, artwork_partitions)])[key]
    return {
        status.value: {str(k) for k in subset.subset_value.get_partition_keys()}
        for status, subset in state.subsets.items()
        if not subset.is_empty
    }


@pytest.mark.parametrize("setup", ["embedded_setup", "production_setup"])
def test_each_partition_of_a_ranged_run_records_its_own_counts_and_check_verdicts(
    request: pytest.FixtureRequest, setup: str, generated_origin: LoopbackOrigin
) -> None:
    settings, instance = request.getfixturevalue(setup)
    scenario = Scenario(generated_origin)
    catalog = Catalog(settings.resolved_database_url)
    import_catalog_lines(catalog, scenario.lines)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("sync_images")
    tags = {RANGE_START_TAG: RANGE[0], RANGE_END_TAG: RANGE[-1]}
    result = job.execute_in_process(instance=instance, tags=tags)
    assert result.success

    discovery = _metadata(instance, "missing_artwork", result.run_id)
    assert set(discovery) == set(RANGE)
    assert discovery[scenario.key_a]["to_download"].value == 1
    assert discovery[scenario.key_b]["to_download"].value == 2
    assert sum(m["to_download"].value for m in discovery.values()) == 3

    downloads = _metadata(instance, "source_images", result.run_id)
    assert set(downloads) == set(RANGE)
    a, b = downloads[scenario.key_a], downloads[scenario.key_b]
    assert (a["succeeded"].value, a["failed"].value, _failures(a)) == (1, 0, {})
    assert (b["succeeded"].value, b["failed"].value, _failures(b)) == (1, 1, {"empty": 1})
    # Bytes are each partition's own source bytes, with units beside the number.
    assert a["bytes_in"].value == len(scenario.poster_a)
    assert b["bytes_in"].value == len(scenario.poster_b)
    assert a["size_in"].value.endswith(" KB")
    assert "1 failed" in b["summary"].value and "empty: 1" in b["summary"].value
    for key in set(RANGE) - {scenario.key_a, scenario.key_b}:
        idle = downloads[key]
        assert (idle["succeeded"].value, idle["failed"].value, idle["bytes_in"].value) == (0, 0, 0)
        assert "nothing to do" in idle["summary"].value

    renders = _metadata(instance, "image_renditions", result.run_id)
    assert renders[scenario.key_a]["succeeded"].value == 1
    assert renders[scenario.key_b]["succeeded"].value == 1
    assert renders[scenario.key_a]["bytes_in"].value == len(scenario.poster_a)
    phases = {row.data["phase"] for row in renders[scenario.key_a]["time_by_phase"].value.records}
    assert phases == {"read_source", "render", "upload"}
    assert renders[scenario.key_a]["bytes_out"].value != renders[scenario.key_b]["bytes_out"].value

    # The run's totals are stated once per stage, in the run's log, not on each partition.
    summaries = {
        entry.step_key: entry.user_message
        for entry in instance.all_logs(result.run_id)
        if parse_run_totals(entry.user_message) is not None
    }
    assert set(summaries) == {"source_images", "image_renditions"}
    assert "**download**: 2 processed, **1 failed** (empty: 1)" in summaries["source_images"]
    assert "over 16 partitions (2 with work)" in summaries["source_images"]
    totals = parse_run_totals(summaries["source_images"])
    assert totals is not None and (totals["succeeded"], totals["failed"]) == (2, 1)
    assert totals["bytes_in"] == len(scenario.poster_a) + len(scenario.poster_b)

    # Every partition of the range is evaluated by each check of the job, once: passed, none skipped.
    evaluated = [
        (entry.step_key, entry.dagster_event.event_specific_data.partition)
        for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    checks = ("catalog_objects_exist", "processed_artwork_complete", "no_stale_images")
    assert len(evaluated) == len(set(evaluated)) == len(checks) * len(RANGE)
    for check in checks:
        assert _check_statuses(instance, check) == {"SUCCEEDED": set(RANGE)}
    key = dg.AssetCheckKey(dg.AssetKey("image_renditions"), "catalog_objects_exist")
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    assert {info.partition_key for info in infos if info.is_current} == set(RANGE)

    # An object of partition A goes missing: the next run fails the check for A only.
    with catalog.session() as session:
        lost = session.get(Artwork, 1).renditions[0].storage_key
    store_from_settings(settings).delete(Bucket.THUMBNAILS, [lost])
    # A run of the checks without a sync's discovery (rerender_images) finds the loss in A only.
    again = defs.resolve_job_def("rerender_images").execute_in_process(instance=instance, tags=tags)
    assert again.success
    assert _check_statuses(instance, "catalog_objects_exist") == {
        "SUCCEEDED": set(RANGE) - {scenario.key_a},
        "FAILED": {scenario.key_a},
    }
    assert _check_statuses(instance, "processed_artwork_complete") == {"SUCCEEDED": set(RANGE)}
    failed = next(
        e
        for e in again.get_asset_check_evaluations()
        if e.check_name == "catalog_objects_exist" and not e.passed
    )
    assert failed.partition == scenario.key_a and failed.metadata["missing"].value == 1
    assert lost in failed.metadata["missing_examples"].value

    # The next sync's discovery makes the same comparison and renders A's artwork again.
    repaired = job.execute_in_process(instance=instance, tags=tags)
    assert repaired.success
    discovery = {m.partition: m.metadata for m in repaired.asset_materializations_for_node("missing_artwork")}
    assert discovery[scenario.key_a]["lost_rerender"].value == 1
    assert discovery[scenario.key_b]["lost_objects_missing"].value == 0
    assert _check_statuses(instance, "catalog_objects_exist") == {"SUCCEEDED": set(RANGE)}
    catalog.dispose()


@pytest.mark.parametrize(
    ("extra", "catalog_kind", "storage_kind"),
    [
        ({}, "sqlite", "file"),
        (
            {
                "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
                "STORAGE_BACKEND": "s3",
                "S3_ACCESS_KEY_ID": "key",
                "S3_SECRET_ACCESS_KEY": "secret",
            },
            "postgres",
            "s3",
        ),
    ],
)
def test_asset_kinds_name_the_configured_backends(
    tmp_path: Path, extra: dict[str, str], catalog_kind: str, storage_kind: str
) -> None:
    settings = Settings.model_validate({"LOCAL_STORAGE_DIR": str(tmp_path)} | extra)
    graph = build_definitions(settings).resolve_asset_graph()
    kinds = {key.to_user_string(): graph.get(key).kinds for key in graph.get_all_asset_keys()}
    assert kinds == {
        "missing_artwork": {catalog_kind, storage_kind},
        "source_images": {storage_kind},
        "image_renditions": {"pillow", storage_kind},
        "orphaned_images": {storage_kind},
        "storage_stats": {catalog_kind},
        "source_revalidation": {storage_kind},
        "artwork_views_daily": {catalog_kind},
        "dedup_report": {catalog_kind, storage_kind},
    }


def test_sizes_read_with_units() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1_534_000, 2_000_000_000)] == [
        "0 B",
        "999 B",
        "1.00 KB",
        "1.53 MB",
        "2.00 GB",
    ]
