"""Dagster resources: thin, configurable wrappers that hand the core modules what they need.

Each resource's fields carry the names of the project settings they mirror, so their defaults come
from env vars / `.env` and an operator can still override them per run in the launchpad (for example
`image_quality` for a re-render). Secrets set in the environment are passed as `EnvVar`s, so the UI
shows the variable's name, never its value.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dagster as dg
from pydantic import PrivateAttr, SecretStr

from tvdb_images.catalog.db import Catalog
from tvdb_images.config import AVIF_QUALITY_DEFAULT, Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.registry import DEFAULT_OUTPUT_FORMAT
from tvdb_images.storage import ObjectStore, store_from_settings

_catalogs: dict[str, Catalog] = {}
_catalogs_lock = threading.Lock()


class _SettingsMirror(dg.ConfigurableResource):
    """A resource whose fields are a subset of `Settings`, converted by field name both ways."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Any:
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = getattr(settings, name)
            alias = Settings.model_fields[name].alias or name.upper()
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if name in _SECRET_FIELDS and os.environ.get(alias):
                value = dg.EnvVar(alias)
            values[name] = str(value) if hasattr(value, "is_absolute") else value
        return cls(**(values | overrides))

    def to_settings(self) -> Settings:
        values: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                value = ",".join(value)
            values[Settings.model_fields[name].alias or name.upper()] = value
        return Settings.model_validate(values)


_SECRET_FIELDS = {"database_url", "s3_access_key_id", "s3_secret_access_key"}


class CatalogResource(dg.ConfigurableResource):
    """The catalog database (SQLAlchemy URL); one engine per process, shared by every step."""

    database_url: str

    def get_catalog(self) -> Catalog:
        with _catalogs_lock:
            catalog = _catalogs.get(self.database_url)
            if catalog is None:
                catalog = _catalogs[self.database_url] = Catalog(self.database_url)
            return catalog


class ObjectStorageResource(_SettingsMirror):
    """Where images are stored: a local directory or an S3-compatible service."""

    storage_backend: str = "local"
    local_storage_dir: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket_originals: str = "tvdb-originals"
    s3_bucket_thumbnails: str = "tvdb-thumbnails"
    cdn_base_url: str | None = None

    _store: ObjectStore | None = PrivateAttr(default=None)

    def get_store(self) -> ObjectStore:
        if self._store is None:
            self._store = store_from_settings(self.to_settings())
            self._store.ensure_buckets()
        return self._store


class ImagePipelineResource(_SettingsMirror):
    """Imaging, fetching and retry settings for the pipeline stages."""

    image_format: str = DEFAULT_OUTPUT_FORMAT
    image_quality: int = 85
    image_quality_avif: int = AVIF_QUALITY_DEFAULT
    webp_method: int = 4
    enable_image_optimization: bool = True
    max_image_file_size_mb: float = 20.0
    max_image_pixels: int = 50_000_000
    max_image_frames: int = 100
    render_workers: int = 0
    allowed_source_hosts: list[str] = []
    fetch_connect_timeout_seconds: float = 5.0
    fetch_read_timeout_seconds: float = 15.0
    fetch_total_timeout_seconds: float = 60.0
    fetch_max_retries: int = 3
    fetch_concurrency_per_host: int = 8
    fetch_max_redirects: int = 5
    artwork_max_attempts: int = 5
    orphan_grace_hours: float = 24.0
    source_revalidate_days: int = 30
    source_revalidate_without_validators: str = "head"
    stale_image_policy: str = "serve"

    def pipeline_settings(self) -> PipelineSettings:
        return PipelineSettings.from_settings(self.to_settings())

    def fetcher(self) -> ImageFetcher:
        return ImageFetcher(self.pipeline_settings().fetch)


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources the code location uses, configured from env vars / `.env`."""
    database_url: Any = (
        dg.EnvVar("DATABASE_URL") if os.environ.get("DATABASE_URL") else settings.resolved_database_url
    )
    return {
        "catalog": CatalogResource(database_url=database_url),
        "storage": ObjectStorageResource.from_settings(
            settings, local_storage_dir=str(settings.resolved_local_storage_dir)
        ),
        "image_pipeline": ImagePipelineResource.from_settings(settings),
    }
