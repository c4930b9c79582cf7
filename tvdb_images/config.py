"""Settings read from the environment and a `.env` file, validated once at start.

The names are the project's contract (README, "Configuration"): operators set them in `.env`, in
docker-compose or in their shell. A bad value stops the program with a message naming the variable,
rather than failing later in the middle of a run. How a setting reaches a Dagster run, and which ones
a run may override: docs/architecture.md, "Settings".
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tvdb_images.registry import (
    DEFAULT_OUTPUT_FORMAT,
    OUTPUT_FORMAT_NAMES,
    SIZE_NAMES,
    RenditionSize,
    parse_crop_renditions,
    size_table,
)

CONTENT_TYPES: tuple[str, ...] = ("episodes", "movies", "people", "seasons", "series")
IMAGE_TYPES: tuple[str, ...] = ("poster", "banner", "fanart", "image", "thumbnail", "clearlogo", "clearart")

# TVDB serves artwork from these hosts; anything else in a catalog is refused unless an operator
# adds it to ALLOWED_SOURCE_HOSTS.
DEFAULT_ALLOWED_SOURCE_HOSTS: tuple[str, ...] = ("artworks.thetvdb.com", "thetvdb.com", "www.thetvdb.com")
AVIF_QUALITY_DEFAULT = 70
WATERMARK_POSITIONS: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
AVIF_SPEED_DEFAULT = 8


class ConfigError(RuntimeError):
    """A setting has a value the program cannot run with; the message names the variable."""


class Settings(BaseSettings):
    """Everything the pipeline, the CLI and the serving API can be configured with."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # Where the embedded default keeps its SQLite catalog, local object storage and Dagster home.
    data_dir: Path = Field(default=Path(".tvdb_images"), alias="TVDB_IMAGES_DATA_DIR")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")

    storage_backend: Literal["local", "s3"] = Field(default="local", alias="STORAGE_BACKEND")
    local_storage_dir: Path | None = Field(default=None, alias="LOCAL_STORAGE_DIR")
    # Octal modes of the local backend's files and directories, applied whatever the umask.
    local_storage_file_mode: int = Field(default=0o644, ge=0, le=0o777, alias="LOCAL_STORAGE_FILE_MODE")
    local_storage_dir_mode: int = Field(default=0o755, ge=0, le=0o777, alias="LOCAL_STORAGE_DIR_MODE")
    s3_endpoint_url: str | None = Field(default=None, alias="S3_ENDPOINT_URL")
    s3_access_key_id: str | None = Field(default=None, alias="S3_ACCESS_KEY_ID")
    s3_secret_access_key: SecretStr | None = Field(default=None, alias="S3_SECRET_ACCESS_KEY")
    s3_region: str = Field(default="us-east-1", alias="S3_REGION")
    s3_bucket_originals: str = Field(default="tvdb-originals", alias="S3_BUCKET_ORIGINALS")
    s3_bucket_thumbnails: str = Field(default="tvdb-thumbnails", alias="S3_BUCKET_THUMBNAILS")
    cdn_base_url: str | None = Field(default=None, alias="CDN_BASE_URL")

    # The output formats every size is rendered to, the first one's URLs in the seed's `local_*_url`
    # columns. IMAGE_FORMATS lists them ("webp,avif"); IMAGE_FORMAT is the one-format shorthand.
    image_format: Literal[OUTPUT_FORMAT_NAMES] = Field(  # type: ignore[valid-type]  # pydantic expands the tuple
        default=DEFAULT_OUTPUT_FORMAT, alias="IMAGE_FORMAT"
    )
    image_formats: Annotated[list[Literal[OUTPUT_FORMAT_NAMES]], NoDecode] | None = Field(  # type: ignore[valid-type]  # pydantic expands the tuple
        default=None, alias="IMAGE_FORMATS"
    )
    image_quality: int = Field(default=85, ge=1, le=100, alias="IMAGE_QUALITY")
    # AVIF's own quality, chosen so that AVIF looks like WebP at the default IMAGE_QUALITY.
    image_quality_avif: int = Field(default=AVIF_QUALITY_DEFAULT, ge=1, le=100, alias="IMAGE_QUALITY_AVIF")
    webp_method: int = Field(default=4, ge=0, le=6, alias="WEBP_METHOD")
    # libavif's speed (0 slowest/smallest .. 10 fastest), chosen by measurement (docs/performance.md).
    avif_speed: int = Field(default=AVIF_SPEED_DEFAULT, ge=0, le=10, alias="AVIF_SPEED")
    enable_image_optimization: bool = Field(default=True, alias="ENABLE_IMAGE_OPTIMIZATION")
    max_image_file_size_mb: float = Field(default=20.0, gt=0, le=1024, alias="MAX_IMAGE_FILE_SIZE_MB")
    max_image_pixels: int = Field(default=50_000_000, gt=0, alias="MAX_IMAGE_PIXELS")
    max_image_frames: int = Field(default=100, gt=0, alias="MAX_IMAGE_FRAMES")
    render_workers: int = Field(default=0, ge=0, le=64, alias="RENDER_WORKERS")
    # Exact-box crops placed on the image's content, "name:WIDTHxHEIGHT,...", stored and served beside
    # the five sizes (registry.parse_crop_renditions says what is accepted).
    crop_renditions: Annotated[tuple[RenditionSize, ...], NoDecode] = Field(
        default=(), alias="CROP_RENDITIONS"
    )
    # Optional watermark (off unless WATERMARK_IMAGE is set): a PNG with alpha composited onto the
    # listed sizes at render time; the file itself is checked at start (preflight.check_watermark).
    watermark_image: Path | None = Field(default=None, alias="WATERMARK_IMAGE")
    watermark_position: Literal[WATERMARK_POSITIONS] = Field(  # type: ignore[valid-type]  # pydantic expands the tuple
        default="bottom-right", alias="WATERMARK_POSITION"
    )
    watermark_opacity: float = Field(default=0.5, ge=0, le=1, alias="WATERMARK_OPACITY")
    # >= 1: pixels; below 1: a fraction of the rendition's shorter side.
    watermark_margin: float = Field(default=0.02, ge=0, le=10000, alias="WATERMARK_MARGIN")
    watermark_scale: float = Field(default=0.2, gt=0, le=1, alias="WATERMARK_SCALE")
    # Built-in sizes and configured crop names (CROP_RENDITIONS); checked against both in _check_watermark.
    watermark_sizes: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="WATERMARK_SIZES")

    allowed_source_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_SOURCE_HOSTS), alias="ALLOWED_SOURCE_HOSTS"
    )
    fetch_connect_timeout_seconds: float = Field(default=5.0, gt=0, alias="FETCH_CONNECT_TIMEOUT_SECONDS")
    fetch_read_timeout_seconds: float = Field(default=15.0, gt=0, alias="FETCH_READ_TIMEOUT_SECONDS")
    fetch_total_timeout_seconds: float = Field(default=60.0, gt=0, alias="FETCH_TOTAL_TIMEOUT_SECONDS")
    fetch_max_retries: int = Field(default=3, ge=0, le=10, alias="FETCH_MAX_RETRIES")
    fetch_concurrency_per_host: int = Field(default=8, ge=1, le=256, alias="FETCH_CONCURRENCY_PER_HOST")
    fetch_max_redirects: int = Field(default=5, ge=0, le=20, alias="FETCH_MAX_REDIRECTS")

    artwork_max_attempts: int = Field(default=5, ge=1, le=100, alias="ARTWORK_MAX_ATTEMPTS")
    orphan_grace_hours: float = Field(default=24.0, ge=0, alias="ORPHAN_GRACE_HOURS")
    # Source revalidation: every stored source is checked against its origin once in this many days
    # (0 = never); an origin that sent no ETag/Last-Modified is asked with HEAD (size and type) or a
    # full GET; a changed source that is refused leaves the last good image served, marked stale, or
    # withdraws it.
    source_revalidate_days: int = Field(default=30, ge=0, le=3650, alias="SOURCE_REVALIDATE_DAYS")
    source_revalidate_without_validators: Literal["head", "get"] = Field(
        default="head", alias="SOURCE_REVALIDATE_WITHOUT_VALIDATORS"
    )
    stale_image_policy: Literal["serve", "withdraw"] = Field(default="serve", alias="STALE_IMAGE_POLICY")
    # Identical sources (sha256) rendered with the same settings are rendered and stored once.
    dedup_exact_duplicates: bool = Field(default=True, alias="DEDUP_EXACT_DUPLICATES")
    # Near-duplicate clusters (same picture at another size or quality, by perceptual hash) are served
    # from their best member's renditions. Off by default: a human may disagree with a hash.
    dedup_near_duplicates: bool = Field(default=False, alias="DEDUP_NEAR_DUPLICATES")

    admin_api_token: SecretStr | None = Field(default=None, alias="ADMIN_API_TOKEN")
    dagster_graphql_url: str = Field(default="http://127.0.0.1:3000/graphql", alias="DAGSTER_GRAPHQL_URL")

    # Serving API: answer for artwork not stored yet, browser cache lifetime of unversioned image URLs,
    # and the per-client budget of admin sync launches.
    missing_image_redirect: bool = Field(default=False, alias="MISSING_IMAGE_REDIRECT")
    image_cache_max_age_seconds: int = Field(
        default=86400, ge=0, le=31536000, alias="IMAGE_CACHE_MAX_AGE_SECONDS"
    )
    admin_sync_rate_per_minute: float = Field(default=30.0, gt=0, alias="ADMIN_SYNC_RATE_PER_MINUTE")
    admin_sync_burst: int = Field(default=5, ge=1, le=1000, alias="ADMIN_SYNC_BURST")
    # Serving API caches, per process: how long an image lookup is answered from memory (a replaced
    # rendition is served at most this late; 0 = ask the catalog every time), how many lookups to keep,
    # and the memory for small rendition bytes (0 = always read storage).
    serving_cache_seconds: float = Field(default=5.0, ge=0, le=3600, alias="SERVING_CACHE_SECONDS")
    serving_cache_entries: int = Field(default=10_000, ge=1, le=10_000_000, alias="SERVING_CACHE_ENTRIES")
    serving_byte_cache_mb: float = Field(default=64.0, ge=0, le=65536, alias="SERVING_BYTE_CACHE_MB")
    # Serving API behind proxies and in browsers: the public origin written into absolute URLs (unset:
    # root-relative URLs, never the request's Host), origins allowed by CORS, /docs on or off, proxies
    # whose X-Forwarded-For is believed (IPs or CIDRs; none by default), and the cache lifetime of
    # artwork metadata JSON.
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="CORS_ALLOW_ORIGINS"
    )
    api_docs: bool = Field(default=True, alias="API_DOCS")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="TRUSTED_PROXIES")
    metadata_cache_max_age_seconds: int = Field(
        default=60, ge=0, le=86400, alias="METADATA_CACHE_MAX_AGE_SECONDS"
    )
    # Serving API limits per connection (header bytes, header count, seconds to send them) and the
    # seconds uvicorn's supervisor waits for a worker's health ping before replacing it.
    serving_max_header_bytes: int = Field(
        default=32768, ge=1024, le=1048576, alias="SERVING_MAX_HEADER_BYTES"
    )
    serving_max_headers: int = Field(default=100, ge=8, le=1000, alias="SERVING_MAX_HEADERS")
    serving_header_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, alias="SERVING_HEADER_TIMEOUT_SECONDS"
    )
    serving_worker_healthcheck_seconds: int = Field(
        default=120, ge=5, le=3600, alias="SERVING_WORKER_HEALTHCHECK_SECONDS"
    )
    # Prometheus metrics at GET /metrics (serving.metrics): on or off, the bearer token a scrape needs
    # (none: open), and how often each worker recomputes the catalog gauges (one grouped query).
    metrics_enabled: bool = Field(default=True, alias="METRICS_ENABLED")
    metrics_token: SecretStr | None = Field(default=None, alias="METRICS_TOKEN")
    catalog_metrics_seconds: float = Field(default=60.0, ge=1, le=86400, alias="CATALOG_METRICS_SECONDS")
    # Pipeline runs push their totals to this Pushgateway (pipeline/metrics_push.py; none: no push), one
    # group per run, groups older than the retention deleted by the next push.
    prometheus_pushgateway_url: str | None = Field(default=None, alias="PROMETHEUS_PUSHGATEWAY_URL")
    pushgateway_retention_hours: float = Field(
        default=24.0, gt=0, le=8760, alias="PROMETHEUS_PUSHGATEWAY_RETENTION_HOURS"
    )
    # View analytics (serving/views.py): count image views per artwork and size in memory, flushed to
    # the catalog's artwork_views every VIEW_FLUSH_SECONDS and at shutdown (a killed worker loses at
    # most one interval); at most VIEW_MAX_KEYS distinct (day, artwork, size) per worker between flushes.
    view_analytics: bool = Field(default=True, alias="VIEW_ANALYTICS")
    view_flush_seconds: float = Field(default=10.0, ge=0.1, le=3600, alias="VIEW_FLUSH_SECONDS")
    view_max_keys: int = Field(default=100_000, ge=1, le=10_000_000, alias="VIEW_MAX_KEYS")

    @field_validator("crop_renditions", mode="before")
    @classmethod
    def _parse_crops(cls, value: object) -> object:
        return parse_crop_renditions(value) if isinstance(value, str) else value

    @field_validator("allowed_source_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("watermark_image", mode="before")
    @classmethod
    def _blank_path_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("watermark_sizes", mode="before")
    @classmethod
    def _split_sizes(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("image_formats", mode="before")
    @classmethod
    def _split_formats(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()] or None
        return value

    @field_validator("image_formats")
    @classmethod
    def _check_formats(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"lists a format twice: {','.join(value)}")
        return value

    @field_validator("cors_allow_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example (or *)")
        return [origin.rstrip("/") for origin in value]

    @field_validator("public_base_url", "prometheus_pushgateway_url", mode="before")
    @classmethod
    def _check_public_base(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            if not value:
                return None
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError("must be an http(s) URL such as https://images.example (a path is allowed)")
        return value

    @field_validator("cdn_base_url", "s3_endpoint_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            return value or None
        return value

    @field_validator("database_url", "s3_access_key_id", mode="before")
    @classmethod
    def _blank_str_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("local_storage_file_mode", "local_storage_dir_mode", mode="before")
    @classmethod
    def _octal(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return int(value.strip(), 8)
            except ValueError:
                raise ValueError(f"expected an octal mode such as 0644 (got {value!r})") from None
        return value

    @field_validator(
        "image_format",
        "storage_backend",
        "source_revalidate_without_validators",
        "stale_image_policy",
        "watermark_position",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if self.storage_backend == "s3" and self.s3_bucket_originals == self.s3_bucket_thumbnails:
            raise ValueError("S3_BUCKET_ORIGINALS and S3_BUCKET_THUMBNAILS must name different buckets")
        return self

    @model_validator(mode="after")
    def _check_watermark(self) -> Settings:
        # A crop is watermarked only when WATERMARK_SIZES names it; the list is kept in table order
        # (the built-in sizes largest first, then the crops as CROP_RENDITIONS orders them).
        names = (*SIZE_NAMES, *self.crop_names)
        unknown = [size for size in self.watermark_sizes if size not in names]
        if unknown:
            raise ValueError(
                f"WATERMARK_SIZES: unknown size {', '.join(unknown)}; sizes are {', '.join(names)}"
                " (a crop name counts once CROP_RENDITIONS lists it)"
            )
        self.watermark_sizes = [size for size in names if size in self.watermark_sizes]
        if self.watermark_image is not None and not self.watermark_sizes:
            raise ValueError(
                "WATERMARK_SIZES: WATERMARK_IMAGE is set but no size is listed (e.g. large,medium)"
            )
        if self.watermark_image is None and self.watermark_sizes:
            raise ValueError("WATERMARK_IMAGE: not set, but WATERMARK_SIZES lists sizes to watermark")
        return self

    @model_validator(mode="after")
    def _check_format_shorthand(self) -> Settings:
        given, listed = self.model_fields_set, self.image_formats
        if {"image_formats", "image_format"} <= given and listed and self.image_format != listed[0]:
            raise ValueError(
                f"IMAGE_FORMAT={self.image_format} disagrees with IMAGE_FORMATS={','.join(listed)}"
                " (set only IMAGE_FORMATS, whose first format is the one IMAGE_FORMAT names)"
            )
        return self

    @property
    def output_formats(self) -> tuple[str, ...]:
        """The formats renditions are stored in, in IMAGE_FORMATS order (IMAGE_FORMAT alone: one)."""
        return tuple(self.image_formats) if self.image_formats else (self.image_format,)

    @cached_property
    def resolved_database_url(self) -> str:
        """The catalog URL: DATABASE_URL, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @cached_property
    def resolved_local_storage_dir(self) -> Path:
        return (self.local_storage_dir or self.data_dir / "storage").resolve()

    @property
    def crop_names(self) -> tuple[str, ...]:
        """The configured crop renditions (CROP_RENDITIONS), in their order."""
        return tuple(row.name for row in self.crop_renditions)

    @property
    def rendition_sizes(self) -> tuple[RenditionSize, ...]:
        """The registry's size table with this deployment's crop rows joined to it."""
        return size_table(self.crop_renditions)

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_file_size_mb * 1024 * 1024)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings, turning pydantic's report into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        message = str(error.get("msg")).removeprefix("Value error, ")
        if not error.get("loc"):  # a check across settings: its message names them
            lines.append(f"  {message}")
            continue
        name = _env_name(".".join(str(part) for part in error["loc"]))
        given = error.get("input")
        shown = "" if isinstance(given, dict) or given is None else f" (got {given!r})"
        lines.append(f"  {name}: {message}{shown}")
    return "\n".join(lines)


def _env_name(field_or_alias: str) -> str:
    field = Settings.model_fields.get(field_or_alias)
    if field is not None and field.alias:
        return field.alias
    return field_or_alias.upper()
