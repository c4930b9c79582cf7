"""The launchpad config of the op jobs explains and validates itself, through Dagster's own config
validation and run results: documented fields, content types as an enum, positive ids and limits,
and an item the catalog does not have failing the run by name. The resources' config holds only the
per-run overrides, defaulting to the settings in effect, and never a setting's secret."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import pytest
from dagster._config import ConfigTypeKind
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import CONTENT_TYPES, DEFAULT_ALLOWED_SOURCE_HOSTS, Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.defs.resources import ImagePipelineResource
from tvdb_images.pipeline.settings import PipelineSettings, RunOverrides

JOBS = {"sync_content_item": "sync_content_item_op", "sync_missing_artwork": "sync_missing_artwork_op"}


@pytest.fixture
def defs(tmp_path: Path, sqlite_catalog: Catalog) -> dg.Definitions:
    line = {"content_type": "movies", "id": 21, "artworks": []}
    import_catalog_lines(sqlite_catalog, [json.dumps(line)])
    settings = Settings.model_validate(
        {"DATABASE_URL": sqlite_catalog.url, "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}
    )
    return build_definitions(settings)


def _config_fields(defs: dg.Definitions, job: str):
    schema = defs.resolve_job_def(job).run_config_schema.config_type
    op = schema.fields["ops"].config_type.fields[JOBS[job]].config_type
    return op.fields["config"].config_type.fields


def _run(defs: dg.Definitions, job: str, config: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {JOBS[job]: {"config": config}}},
        raise_on_error=False,
    )


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    """What the run page shows for the failed step: the error, its causes and any Failure description."""
    (event,) = result.get_step_failure_events()
    data = event.step_failure_data
    parts = [data.user_failure_data.description or ""] if data.user_failure_data else []
    error = data.error
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


@pytest.mark.parametrize("job", list(JOBS))
def test_every_config_field_is_documented_and_content_type_is_an_enum(defs: dg.Definitions, job: str) -> None:
    fields = _config_fields(defs, job)
    assert all(field.description for field in fields.values()), {
        name: field.description for name, field in fields.items()
    }
    content_type = fields["content_type"].config_type
    if content_type.kind == ConfigTypeKind.NONEABLE:  # optional for sync_missing_artwork
        content_type = content_type.inner_type
    assert content_type.kind == ConfigTypeKind.ENUM
    assert [value.config_value for value in content_type.enum_values] == list(CONTENT_TYPES)


def test_an_unknown_content_type_or_the_scaffold_template_is_refused_at_launch(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("sync_content_item")
    scaffold = {"content_type": "|".join(CONTENT_TYPES), "content_id": 0}  # what the launchpad fills in
    for config in ({"content_type": "shows", "content_id": 1}, scaffold):
        run_config = {"ops": {"sync_content_item_op": {"config": config}}}
        with pytest.raises(dg.DagsterInvalidConfigError, match="content_type"):
            dg.validate_run_config(job, run_config)
    dg.validate_run_config(
        job, {"ops": {"sync_content_item_op": {"config": {"content_type": "movies", "content_id": 21}}}}
    )
    # sync_missing_artwork needs no config at all: its scaffold (nothing) is valid as it stands.
    dg.validate_run_config(defs.resolve_job_def("sync_missing_artwork"), {})


@pytest.mark.parametrize(
    ("job", "config", "says"),
    [
        ("sync_content_item", {"content_type": "movies", "content_id": 0}, "content_id"),
        ("sync_content_item", {"content_type": "movies", "content_id": -5}, "greater than 0"),
        ("sync_missing_artwork", {"limit": 0}, "limit"),
        ("sync_missing_artwork", {"limit": 20_000}, "less than or equal to 10000"),
    ],
)
def test_ids_and_limits_must_be_positive(defs: dg.Definitions, job: str, config: dict, says: str) -> None:
    result = _run(defs, job, config)
    assert not result.success
    assert says in _failure_text(result)


def test_an_item_the_catalog_does_not_have_fails_the_run_naming_it(defs: dg.Definitions) -> None:
    missing = _run(defs, "sync_content_item", {"content_type": "movies", "content_id": 999})
    assert not missing.success
    assert "the catalog has no movies with id 999" in _failure_text(missing)
    # The same id under another content type is another item, and unknown too.
    assert not _run(defs, "sync_content_item", {"content_type": "series", "content_id": 21}).success
    # The known item (with no artwork yet) syncs, with nothing to do.
    known = _run(defs, "sync_content_item", {"content_type": "movies", "content_id": 21})
    assert known.success


OVERRIDES = ("image_quality", "image_quality_avif", "webp_method", "render_workers")


def _resource_configs(defs: dg.Definitions, job: str = "sync_images"):
    """Each resource's `config` field of the job's run config schema (what the launchpad offers)."""
    schema = defs.resolve_job_def(job).run_config_schema.config_type
    resources = schema.fields["resources"].config_type.fields
    return {
        name: resource.config_type.fields["config"]
        for name, resource in resources.items()
        if name != "io_manager"
    }


def test_resource_overrides_cannot_drift_from_the_settings() -> None:
    """Each launchpad override is a setting with the same default and bounds, and reaches the run
    through RunOverrides: a field in one place only would be a second, diverging representation."""
    fields = {name: f for name, f in ImagePipelineResource.model_fields.items() if name != "settings"}
    assert tuple(fields) == OVERRIDES
    assert tuple(f.name for f in dataclasses.fields(RunOverrides)) == OVERRIDES
    for name, field in fields.items():
        setting = Settings.model_fields[name]
        assert field.default == setting.get_default(call_default_factory=True), name
        assert field.metadata == setting.metadata, name  # ge/le
        assert field.description and setting.alias in field.description, name


def test_the_launchpad_shows_only_the_overrides_with_the_values_in_effect(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "DATABASE_URL": "postgresql://tvdb:pg-hunter2@127.0.0.1:1/tvdb",
            "STORAGE_BACKEND": "s3",
            "S3_ACCESS_KEY_ID": "key-id-visible-nowhere",
            "S3_SECRET_ACCESS_KEY": "s3-hunter2",
            "IMAGE_QUALITY": 77,
            "RENDER_WORKERS": 3,
        }
    )
    defs = build_definitions(settings)
    configs = _resource_configs(defs)
    assert {name: set(config.config_type.fields) for name, config in configs.items()} == {
        "catalog": set(),
        "storage": set(),
        "image_pipeline": set(OVERRIDES),
    }
    pipeline = configs["image_pipeline"]
    assert all(field.description for field in pipeline.config_type.fields.values())
    # The launchpad's default for the resource's config: the values in effect, not the class defaults.
    assert pipeline.default_value == {
        "image_quality": 77,
        "image_quality_avif": settings.image_quality_avif,
        "webp_method": settings.webp_method,
        "render_workers": 3,
    }
    # What the UI is sent about the code location holds no secret, nor any other setting's value.
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    for value in ("pg-hunter2", "s3-hunter2", "key-id-visible-nowhere", "127.0.0.1:1"):
        assert value not in snapshot, value


def test_overrides_reach_the_pipeline_settings_and_unset_ones_keep_the_settings() -> None:
    settings = Settings.model_validate({"IMAGE_QUALITY": 80, "WEBP_METHOD": 3, "RENDER_WORKERS": 2})
    plain = PipelineSettings.from_settings(settings)
    assert PipelineSettings.from_settings(settings, RunOverrides()) == plain
    assert (plain.render.quality, plain.render.webp_method, plain.render_workers) == (80, 3, 2)
    tuned = PipelineSettings.from_settings(settings, RunOverrides(image_quality=60, render_workers=5))
    assert (tuned.render.quality, tuned.render.webp_method, tuned.render_workers) == (60, 3, 5)
    assert tuned.signature != plain.signature and tuned.fetch == plain.fetch
    avif = settings.model_copy(update={"image_format": "avif"})
    assert PipelineSettings.from_settings(avif, RunOverrides(image_quality=60)).render.quality == 70
    assert PipelineSettings.from_settings(avif, RunOverrides(image_quality_avif=40)).render.quality == 40


def test_a_run_override_reaches_the_resources_pipeline_settings(defs: dg.Definitions) -> None:
    resource = defs.resources["image_pipeline"]
    with dg.build_resources({"image_pipeline": resource}) as unchanged:
        assert unchanged.image_pipeline.pipeline_settings().render.quality == 85
    config = {"image_pipeline": {"config": {"image_quality": 61, "webp_method": 6}}}
    with dg.build_resources({"image_pipeline": resource}, resource_config=config) as run:
        pipeline = run.image_pipeline.pipeline_settings()
        assert (pipeline.render.quality, pipeline.render.webp_method) == (61, 6)
        assert run.image_pipeline.pipeline_settings() is pipeline  # built once per run
        assert pipeline.fetch.allowed_hosts == frozenset(DEFAULT_ALLOWED_SOURCE_HOSTS)


def test_a_bad_override_fails_the_run_at_start_naming_the_field(
    defs: dg.Definitions, sqlite_catalog: Catalog
) -> None:
    result = defs.resolve_job_def("sync_content_item").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={
            "ops": {"sync_content_item_op": {"config": {"content_type": "movies", "content_id": 21}}},
            "resources": {"image_pipeline": {"config": {"image_quality": 150}}},
        },
        raise_on_error=False,
    )
    assert not result.success
    assert not result.get_step_success_events()
    (failure,) = [e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE"]
    messages = []
    error = failure.event_specific_data.error
    while error is not None:
        messages.append(error.message)
        error = error.cause
    text = "\n".join(messages)
    assert "image_pipeline config: image_quality: Input should be less than or equal to 100 (got 150)" in text
