"""Session-scoped data for the serving API tests, loaded with `pytest_plugins` by their modules so that
each setup's pipeline run happens once per test session (see `serving_data` for what it holds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings
from tvdb_images_tests.support import services
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.serving_data import ServedData, base_values, fill, s3_values


@pytest.fixture(scope="session")
def serving_origin(corpus_dir: Path) -> Iterator[LoopbackOrigin]:
    with LoopbackOrigin(corpus_dir) as origin:
        yield origin


@pytest.fixture(scope="session")
def embedded_data(
    tmp_path_factory: pytest.TempPathFactory, serving_origin: LoopbackOrigin, corpus_dir: Path
) -> Iterator[ServedData]:
    root = tmp_path_factory.mktemp("serving-embedded")
    url = f"sqlite:///{root / 'catalog.db'}"
    migrate.upgrade(url)
    values = base_values(serving_origin, url) | {"LOCAL_STORAGE_DIR": str(root / "storage")}
    settings = Settings.model_validate(values)
    catalog = Catalog(url)
    store = fill(settings, catalog, serving_origin, through_dagster=False)
    yield ServedData("embedded", _env(values), settings, catalog, store, serving_origin, corpus_dir)
    catalog.dispose()


@pytest.fixture(scope="session")
def production_data(
    postgres_template: str,
    seaweedfs: services.SeaweedFS,
    serving_origin: LoopbackOrigin,
    corpus_dir: Path,
) -> Iterator[ServedData]:
    name = services.unique_name("tvdb_images_serving")
    url = services.create_database(name, template=postgres_template)
    prefix = services.unique_name("serving").replace("_", "-")
    values = base_values(serving_origin, url) | s3_values(seaweedfs, prefix)
    settings = Settings.model_validate(values)
    catalog = Catalog(url)
    store = fill(settings, catalog, serving_origin, through_dagster=True)
    yield ServedData("production", _env(values), settings, catalog, store, serving_origin, corpus_dir)
    catalog.dispose()
    services.drop_database(name)


@pytest.fixture(scope="session", params=["embedded", "production"])
def served(request: pytest.FixtureRequest) -> ServedData:
    """The same tests on the embedded setup and on real PostgreSQL + SeaweedFS S3."""
    return request.getfixturevalue(f"{request.param}_data")


def _env(values: dict[str, object]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items()}
