"""The watermark through real runs: a sync, then `rerender_images` re-rendering exactly what the
watermark changes; a bad file stopping the CLI and the Dagster runs at start (embedded: SQLite catalog,
local storage, the loopback origin serving the generated corpus)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from sqlalchemy import select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.importer import import_catalog_lines
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.config import ConfigError, Settings
from tvdb_images.definitions import build_definitions
from tvdb_images.partition_keys import partition_key
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.origins import LoopbackOrigin

LISTED = ("large", "thumbnail")


def _mark(path: Path, colour: tuple[int, int, int, int]) -> Path:
    Image.new("RGBA", (120, 60), colour).save(path, "PNG")
    return path


def _settings(tmp_path: Path, origin: LoopbackOrigin, catalog: Catalog, **extra: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": catalog.url,
        "ALLOWED_SOURCE_HOSTS": origin.netloc,
        "FETCH_MAX_RETRIES": 0,
        "RENDER_WORKERS": 2,
        "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
    }
    return Settings.model_validate({**values, **extra})


def _watermarked(tmp_path: Path, origin: LoopbackOrigin, catalog: Catalog, mark: Path) -> Settings:
    extra = {"WATERMARK_IMAGE": str(mark), "WATERMARK_SIZES": ",".join(LISTED), "WATERMARK_OPACITY": "0.8"}
    return _settings(tmp_path, origin, catalog, **extra)


def _import(catalog: Catalog, origin: LoopbackOrigin, content_id: int, artwork_id: int) -> str:
    line = {
        "content_type": "series",
        "id": content_id,
        "artworks": [{"id": artwork_id, "type": "poster", "url": origin.url("/tvdb/poster_a.jpg")}],
    }
    import_catalog_lines(catalog, [json.dumps(line)])
    return partition_key("series", shard_of("series", content_id))


def _renditions(catalog: Catalog, artwork_id: int) -> tuple[str | None, dict[str, str]]:
    with catalog.session() as session:
        artwork = session.get(Artwork, artwork_id)
        return artwork.render_signature, {r.size: r.checksum for r in artwork.renditions}


def _rendered(result: dg.ExecuteInProcessResult) -> int:
    """How many artworks the run's `image_renditions` step rendered."""
    events = result.get_asset_materialization_events()
    return sum(
        e.materialization.metadata["succeeded"].value
        for e in events
        if e.materialization.asset_key == dg.AssetKey("image_renditions")
    )


def test_rerender_re_renders_what_the_watermark_changes(
    tmp_path: Path, sqlite_catalog: Catalog, origin: LoopbackOrigin
) -> None:
    catalog = sqlite_catalog
    pk = _import(catalog, origin, 31, 310)
    instance = dg.DagsterInstance.ephemeral()
    plain = build_definitions(_settings(tmp_path, origin, catalog))
    assert (
        plain.resolve_job_def("sync_images").execute_in_process(instance=instance, partition_key=pk).success
    )
    before_signature, before = _renditions(catalog, 310)

    mark = _mark(tmp_path / "mark.png", (255, 0, 0, 255))
    marked = build_definitions(_watermarked(tmp_path, origin, catalog, mark))
    rerender = marked.resolve_job_def("rerender_images")
    first = rerender.execute_in_process(instance=instance, partition_key=pk)
    assert first.success and _rendered(first) == 1
    signature, after = _renditions(catalog, 310)
    assert signature != before_signature and signature.startswith(before_signature + "-w")
    assert {size for size in after if after[size] != before[size]} == set(LISTED)

    # Nothing changed: nothing to re-render.
    again = rerender.execute_in_process(instance=instance, partition_key=pk)
    assert again.success and _rendered(again) == 0
    assert _renditions(catalog, 310) == (signature, after)

    # Another watermark file at the same path: the next rerender picks it up, the listed sizes change.
    _mark(mark, (0, 0, 255, 255))
    blue = rerender.execute_in_process(instance=instance, partition_key=pk)
    assert blue.success and _rendered(blue) == 1
    blue_signature, blue_after = _renditions(catalog, 310)
    assert blue_signature not in (signature, before_signature)
    assert {size for size in blue_after if blue_after[size] != after[size]} == set(LISTED)
    assert all(blue_after[size] == before[size] for size in before if size not in LISTED)


def test_a_watermark_gone_bad_fails_the_run_before_any_step_works(
    tmp_path: Path, sqlite_catalog: Catalog, origin: LoopbackOrigin
) -> None:
    catalog = sqlite_catalog
    pk = _import(catalog, origin, 32, 320)
    mark = _mark(tmp_path / "mark.png", (255, 0, 0, 255))
    defs = build_definitions(_watermarked(tmp_path, origin, catalog, mark))
    mark.write_bytes(mark.read_bytes()[:40])  # truncated after the code location loaded
    result = defs.resolve_job_def("sync_images").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=pk, raise_on_error=False
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS]
    assert not result.get_asset_materialization_events()
    failures = [e for e in result.all_events if e.is_failure or e.event_type_value == "RESOURCE_INIT_FAILURE"]
    messages = " ".join(str(e.event_specific_data.error.message) for e in failures if e.event_specific_data)
    assert "WATERMARK_IMAGE: " in messages and "does not decode" in messages, messages
    with catalog.session() as session:
        statuses = session.scalars(select(Artwork.status)).all()
    assert statuses == [ArtworkStatus.PENDING]  # nothing downloaded, nothing recorded

    # Loading the code location with the bad file stops at once, with the same line.
    with pytest.raises(ConfigError, match=r"^WATERMARK_IMAGE: .*does not decode"):
        build_definitions(_watermarked(tmp_path, origin, catalog, mark))


@pytest.mark.parametrize("command", [["demo"], ["serve"]])
def test_a_bad_watermark_stops_the_cli_at_start(tmp_path: Path, command: list[str]) -> None:
    opaque = tmp_path / "opaque.png"
    Image.new("RGB", (50, 20), (255, 0, 0)).save(opaque, "PNG")
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DATABASE_", "DAGSTER_", "STORAGE_"))
    }
    env = {
        **clean,
        "TVDB_IMAGES_DATA_DIR": str(tmp_path / "data"),
        "WATERMARK_IMAGE": str(opaque),
        "WATERMARK_SIZES": "large",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tvdb_images.cli", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "WATERMARK_IMAGE: " in lines[0] and "no alpha" in lines[0], result.stderr
    assert not (tmp_path / "data" / "dagster_home").exists()  # no Dagster instance, no run
