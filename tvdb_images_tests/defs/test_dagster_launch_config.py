"""The launchpad config of the op jobs explains and validates itself, through Dagster's own config
validation and run results: documented fields, content types as an enum, positive ids and limits,
and an item the catalog does not have failing the run by name."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from dagster._config import ConfigTypeKind

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.config import CONTENT_TYPES, Settings
from tvdb_images.definitions import build_definitions

JOBS = {"sync_content_item": "sync_content_item_op", "sync_missing_artwork": "sync_missing_artwork_op"}


@pytest.fixture
def defs(tmp_path: Path, sqlite_catalog: Catalog) -> dg.Definitions:
    line = {"content_type": "movies", "id": 21, "artworks": []}
    import_catalog_lines(sqlite_catalog, [json.dumps(line)])
    settings = Settings.model_validate(
        {"DATABASE_URL": sqlite_catalog.url, "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}
    )
    return build_definitions(settings)


def _config_fields(defs: dg.Definitions, job: str):  # type: ignore[no-untyped-def]
    schema = defs.resolve_job_def(job).run_config_schema.config_type
    op = schema.fields["ops"].config_type.fields[JOBS[job]].config_type
    return op.fields["config"].config_type.fields


def _run(defs: dg.Definitions, job: str, config: dict) -> dg.ExecuteInProcessResult:  # type: ignore[type-arg]
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
def test_ids_and_limits_must_be_positive(defs: dg.Definitions, job: str, config: dict, says: str) -> None:  # type: ignore[type-arg]
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
