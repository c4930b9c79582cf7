"""The pipeline's knobs, gathered from the project settings into one immutable object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from tvdb_images.catalog.signatures import MIRROR_SIGNATURE, join_signatures
from tvdb_images.config import ConfigError, Settings
from tvdb_images.fetch import FetchPolicy
from tvdb_images.imaging import RenderSettings, ValidationLimits, render_settings_signature
from tvdb_images.imaging.watermark import Watermark, WatermarkError, load_watermark

__all__ = ["MIRROR_SIGNATURE", "PipelineSettings", "RunOverrides", "watermark_from_settings"]


@dataclass(frozen=True)
class RunOverrides:
    """The settings an operator may change for one run (Dagster's launchpad); None keeps the setting.

    Each is applied by name in `PipelineSettings.from_settings`; to add one, add it here, there, and to
    `ImagePipelineResource` (docs/architecture.md, "Settings")."""

    image_quality: int | None = None
    image_quality_avif: int | None = None
    webp_method: int | None = None
    render_workers: int | None = None


@dataclass(frozen=True)
class PipelineSettings:
    # One per output format (IMAGE_FORMATS order, all with the same sizes): rendered from one decode.
    renders: tuple[RenderSettings, ...]
    limits: ValidationLimits
    fetch: FetchPolicy
    optimization_enabled: bool = True
    max_attempts: int = 5
    render_workers: int = 2
    download_workers: int = 16
    orphan_grace: timedelta = timedelta(hours=24)
    revalidate_every: timedelta | None = timedelta(days=30)  # None: sources are never revalidated
    revalidate_without_validators: str = "head"  # "head" or "get"
    stale_image_policy: str = "serve"  # "serve" (the last good image, marked stale) or "withdraw"
    dedup_exact: bool = True  # identical sources are rendered once and shared (pipeline.dedup)
    dedup_near: bool = False  # near-duplicate clusters are served from their best member (near_fold)

    def __post_init__(self) -> None:
        if not self.renders or len({r.format for r in self.renders}) != len(self.renders):
            raise ValueError("renders must name each output format once, at least one")

    @property
    def render(self) -> RenderSettings:
        """The first listed format's settings: its URLs fill the seed's `local_*_url` columns."""
        return self.renders[0]

    @property
    def format_signatures(self) -> dict[str, str]:
        """Each output format's own render signature, stored with its renditions."""
        return {r.format: render_settings_signature(r) for r in self.renders}

    @property
    def crop_names(self) -> tuple[str, ...]:
        """The configured crop renditions (CROP_RENDITIONS), in their order."""
        return tuple(row.name for row in self.render.crops)

    @property
    def signature(self) -> str:
        """Identifies the rendition settings; artwork recorded with another signature is stale.

        Several formats join their own signatures with "+" in IMAGE_FORMATS order, so the artwork's
        signature also says which formats it is stored in, and which of them are current."""
        if not self.optimization_enabled:
            return MIRROR_SIGNATURE
        return join_signatures(self.format_signatures.values())

    @classmethod
    def from_settings(cls, settings: Settings, overrides: RunOverrides | None = None) -> PipelineSettings:
        """The pipeline's knobs from the settings, with this run's overrides (if any) in their place."""
        run = overrides or RunOverrides()
        webp_quality = _given(run.image_quality, settings.image_quality)
        avif_quality = _given(run.image_quality_avif, settings.image_quality_avif)
        webp_method = _given(run.webp_method, settings.webp_method)
        workers = _given(run.render_workers, settings.render_workers) or os.cpu_count() or 1
        # Each format its own quality, chosen so that the formats look alike (docs/performance.md).
        quality = {"avif": avif_quality}
        watermark = watermark_from_settings(settings)
        return cls(
            renders=tuple(
                RenderSettings(
                    format=name,
                    quality=quality.get(name, webp_quality),
                    webp_method=webp_method,
                    avif_speed=settings.avif_speed,
                    watermark=watermark,
                    crops=settings.crop_renditions,
                )
                for name in settings.output_formats
            ),
            limits=ValidationLimits(
                max_bytes=settings.max_image_bytes,
                max_pixels=settings.max_image_pixels,
                max_frames=settings.max_image_frames,
            ),
            fetch=FetchPolicy(
                allowed_hosts=frozenset(settings.allowed_source_hosts),
                max_bytes=settings.max_image_bytes,
                connect_timeout=settings.fetch_connect_timeout_seconds,
                read_timeout=settings.fetch_read_timeout_seconds,
                total_timeout=settings.fetch_total_timeout_seconds,
                max_retries=settings.fetch_max_retries,
                per_host_concurrency=settings.fetch_concurrency_per_host,
                max_redirects=settings.fetch_max_redirects,
            ),
            optimization_enabled=settings.enable_image_optimization,
            max_attempts=settings.artwork_max_attempts,
            render_workers=workers,
            download_workers=max(4, settings.fetch_concurrency_per_host * 2),
            orphan_grace=timedelta(hours=settings.orphan_grace_hours),
            revalidate_every=(
                timedelta(days=settings.source_revalidate_days) if settings.source_revalidate_days else None
            ),
            revalidate_without_validators=settings.source_revalidate_without_validators,
            stale_image_policy=settings.stale_image_policy,
            dedup_exact=settings.dedup_exact_duplicates,
            dedup_near=settings.dedup_near_duplicates,
        )


def watermark_from_settings(settings: Settings) -> Watermark | None:
    """The watermark the settings name, read and checked now; None when WATERMARK_IMAGE is unset.

    A file that cannot be used is a ConfigError of one line naming WATERMARK_IMAGE, raised wherever the
    pipeline's settings are built: at a command's preflight, the code location's load, and a run's start.
    """
    if settings.watermark_image is None or not settings.enable_image_optimization:
        return None
    try:
        return load_watermark(
            settings.watermark_image,
            sizes=tuple(settings.watermark_sizes),
            position=settings.watermark_position,
            opacity=settings.watermark_opacity,
            margin=settings.watermark_margin,
            scale=settings.watermark_scale,
        )
    except WatermarkError as exc:
        raise ConfigError(f"WATERMARK_IMAGE: {exc}") from None


def _given(override: int | None, setting: int) -> int:
    return setting if override is None else override
