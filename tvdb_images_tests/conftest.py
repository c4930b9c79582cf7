"""Shared fixtures: the generated image corpus, a loopback artwork origin, catalogs on SQLite and
PostgreSQL, object stores on the local disk and on a real SeaweedFS S3 server started for the test
session, and the served data of the serving API tests. Fixtures of one folder only live in its own
conftest.py; plain helpers (no fixtures) in support/.

Tests that need the real services fail (they do not skip) when PostgreSQL or SeaweedFS cannot be had,
so a green run always means the real parts were exercised; `-m "not services"` deselects them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tvdb_images.catalog import migrate
from tvdb_images.catalog.db import Catalog
from tvdb_images.config import Settings
from tvdb_images.storage import Bucket
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images.storage.s3 import S3ObjectStore
from tvdb_images_tests.support import services
from tvdb_images_tests.support.dagster_stack import DagsterStack
from tvdb_images_tests.support.dagster_stack import dagster_stack as start_dagster_stack
from tvdb_images_tests.support.examples import SOAK, soaking
from tvdb_images_tests.support.images import generated_corpus
from tvdb_images_tests.support.origins import LoopbackOrigin
from tvdb_images_tests.support.serving_data import ServedData, base_values, fill, s3_values

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

# TVDB_IMAGES_TEST_PROFILE=soak: the property tests that name no count of their own generate ten times
# Hypothesis's default; those that name one take their soak count (support/examples.py).
hypothesis_settings.register_profile(SOAK, max_examples=1000)
if soaking():
    hypothesis_settings.load_profile(SOAK)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The test suite's own images (tvdb/, edge/, bad/), generated once per session."""
    return generated_corpus()


@pytest.fixture
def origin(corpus_dir: Path) -> Iterator[LoopbackOrigin]:
    """The generated corpus served over HTTP on 127.0.0.1, like TVDB's artwork host."""
    with LoopbackOrigin(corpus_dir) as server:
        yield server


# --- catalogs ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[Catalog]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    catalog = Catalog(url)
    yield catalog
    catalog.dispose()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated template database; each test's database is a cheap copy of it."""
    if not services.postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {services.PG_ADMIN_URL} (start it, see .ci/run)")
    name = services.unique_name("tvdb_images_tmpl")
    url = services.create_database(name)
    migrate.upgrade(url)
    from sqlalchemy import create_engine

    create_engine(url).dispose()
    yield name
    services.drop_database(name)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    name = services.unique_name("tvdb_images_test")
    url = services.create_database(name, template=postgres_template)
    yield url
    services.drop_database(name)


@pytest.fixture
def postgres_catalog(postgres_url: str) -> Iterator[Catalog]:
    catalog = Catalog(postgres_url)
    yield catalog
    catalog.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_catalog(request: pytest.FixtureRequest) -> Catalog:
    """The same test on the embedded SQLite catalog and on the real PostgreSQL server."""
    return request.getfixturevalue(
        f"{request.param}_catalog" if request.param == "sqlite" else "postgres_catalog"
    )


# --- object storage -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.SeaweedFS]:
    with services.seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_bucket_names() -> dict[Bucket, str]:
    suffix = services.unique_name("t").replace("_", "-")
    return {Bucket.ORIGINALS: f"{suffix}-originals", Bucket.THUMBNAILS: f"{suffix}-thumbnails"}


@pytest.fixture
def s3_store(seaweedfs: services.SeaweedFS, s3_bucket_names: dict[Bucket, str]) -> S3ObjectStore:
    store = S3ObjectStore(
        bucket_names=s3_bucket_names,
        endpoint_url=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key=seaweedfs.secret_key,
        region="us-east-1",
    )
    store.ensure_buckets()
    return store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "storage")
    store.ensure_buckets()
    return store


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest):
    """The same test on the local-filesystem store and on real SeaweedFS S3."""
    return request.getfixturevalue(f"{request.param}_store")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real service, so `-m "not services"` gives a quick offline run."""
    real = {"seaweedfs", "postgres_template", "postgres_url", "postgres_catalog", "s3_store"}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = (
            {value for value in callspec.params.values() if isinstance(value, str)} if callspec else set()
        )
        if fixtures & real or params & {"s3", "postgresql", "production"}:
            item.add_marker(pytest.mark.services)


@pytest.fixture
def dagster_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh PostgreSQL database for a Dagster instance, named by DAGSTER_POSTGRES_URL."""
    from tvdb_images_tests.support.stack import dagster_postgres_url

    name = services.unique_name("tvdb_images_dagster")
    url = dagster_postgres_url(services.create_database(name))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    yield url
    services.drop_database(name)


@pytest.fixture(scope="session")
def dagster_stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_template: str,
    seaweedfs: services.SeaweedFS,
    corpus_dir: Path,
) -> Iterator[DagsterStack]:
    """One real dagster-webserver for the admin-launch tests of serving/ and reliability/ (per session,
    so per xdist worker); each test syncs items of its own (support/dagster_stack.py)."""
    root = tmp_path_factory.mktemp("serving-dagster")
    with start_dagster_stack(root, postgres_template, seaweedfs, corpus_dir) as stack:
        yield stack


# --- served data (serving/ and the serving tests in reliability/) --------------------------------
# Session-scoped, so each setup's pipeline run happens once per test session (see support/serving_data).


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
