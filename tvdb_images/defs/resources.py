"""Dagster resources: thin wrappers that hand the core modules what they need.

Every resource holds the `Settings` the code location loaded once (env vars and `.env`), as a plain
resource dependency that is no part of the run config: nothing of it, secrets included, appears in
the UI. The only config fields are the few an operator may sensibly change for one run in the
launchpad (`ImagePipelineResource`); their values are the settings in effect, and they reach the
pipeline through `RunOverrides`, field by named field.
"""

# No `from __future__ import annotations`: Dagster reads the `ResourceDependency` annotations as
# objects when the classes are created.
import threading
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from tvdb_images.catalog.db import Catalog
from tvdb_images.config import ConfigError, Settings
from tvdb_images.fetch import ImageFetcher
from tvdb_images.pipeline.settings import PipelineSettings, RunOverrides
from tvdb_images.storage import ObjectStore, store_from_settings

_catalogs: dict[str, Catalog] = {}
_catalogs_lock = threading.Lock()


def _default(name: str) -> Any:
    """The `Settings` default of a field, so that a per-run override's default cannot differ from it."""
    return Settings.model_fields[name].get_default(call_default_factory=True)


class CatalogResource(dg.ConfigurableResource):
    """The catalog database (DATABASE_URL); one engine per process, shared by every step."""

    settings: dg.ResourceDependency[Settings]

    def get_catalog(self) -> Catalog:
        url = self.settings.resolved_database_url
        with _catalogs_lock:
            catalog = _catalogs.get(url)
            if catalog is None:
                catalog = _catalogs[url] = Catalog(url)
            return catalog


class ObjectStorageResource(dg.ConfigurableResource):
    """Where images are stored (STORAGE_BACKEND and its settings): a directory or an S3 service."""

    settings: dg.ResourceDependency[Settings]

    _store: ObjectStore | None = PrivateAttr(default=None)

    def get_store(self) -> ObjectStore:
        if self._store is None:
            self._store = store_from_settings(self.settings)
            self._store.ensure_buckets()
        return self._store


class ImagePipelineResource(dg.ConfigurableResource):
    """The pipeline's settings, with the per-run overrides an operator may set in the launchpad
    (`resources: image_pipeline: config: ...`): encoder quality and effort, to try them on a few
    partitions, and render threads. Everything else, the per-host download budget included, is
    configured in the environment only."""

    settings: dg.ResourceDependency[Settings]

    image_quality: int = Field(
        default=_default("image_quality"),
        ge=1,
        le=100,
        description="WebP quality for this run (IMAGE_QUALITY); it is part of the renditions' signature.",
    )
    image_quality_avif: int = Field(
        default=_default("image_quality_avif"),
        ge=1,
        le=100,
        description="AVIF quality for this run (IMAGE_QUALITY_AVIF), used when IMAGE_FORMAT=avif.",
    )
    webp_method: int = Field(
        default=_default("webp_method"),
        ge=0,
        le=6,
        description="WebP encoder effort for this run, 0 (fast) to 6 (smallest) (WEBP_METHOD).",
    )
    render_workers: int = Field(
        default=_default("render_workers"),
        ge=0,
        le=64,
        description="Render threads in this run; 0 means one per CPU (RENDER_WORKERS).",
    )

    _pipeline: PipelineSettings | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, data: Any, handler: Any) -> Any:
        """A bad launchpad value fails the run as it starts with one line naming the field."""
        try:
            return handler(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
            )
            raise ConfigError(f"image_pipeline config: {problems}") from None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Build the settings as the run's resources start, so that a watermark file that went bad
        after the code location loaded fails the run before any step does work, with one line."""
        self.pipeline_settings()

    def overrides(self) -> RunOverrides:
        return RunOverrides(
            image_quality=self.image_quality,
            image_quality_avif=self.image_quality_avif,
            webp_method=self.webp_method,
            render_workers=self.render_workers,
        )

    def pipeline_settings(self) -> PipelineSettings:
        """Built once per run (a resource is initialised per run, with that run's config)."""
        if self._pipeline is None:
            self._pipeline = PipelineSettings.from_settings(self.settings, self.overrides())
        return self._pipeline

    def fetcher(self) -> ImageFetcher:
        return ImageFetcher(self.pipeline_settings().fetch)


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location: all share `settings`; the launchpad's defaults are its values."""
    # Relative paths are resolved now, against the directory the code location was loaded from.
    settings.resolved_database_url  # noqa: B018
    settings.resolved_local_storage_dir  # noqa: B018
    return {
        "catalog": CatalogResource(settings=settings),
        "storage": ObjectStorageResource(settings=settings),
        "image_pipeline": ImagePipelineResource(
            settings=settings,
            image_quality=settings.image_quality,
            image_quality_avif=settings.image_quality_avif,
            webp_method=settings.webp_method,
            render_workers=settings.render_workers,
        ),
    }
