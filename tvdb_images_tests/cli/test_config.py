"""Configuration: the contract's env var names, `.env` files, and clear errors for bad values."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tvdb_images.cli import main
from tvdb_images.config import ConfigError, load_settings
from tvdb_images.imaging import render_renditions
from tvdb_images.pipeline.settings import PipelineSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("IMAGE_QUALITY", "IMAGE_FORMAT", "STORAGE_BACKEND", "DATABASE_URL", "ALLOWED_SOURCE_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.storage_backend == "local"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.tvdb_images' / 'catalog.db'}"
    assert settings.image_format == "webp"
    assert settings.image_quality == 85
    assert "artworks.thetvdb.com" in settings.allowed_source_hosts


def test_contract_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000/",
        "S3_ACCESS_KEY_ID": "key",
        "S3_SECRET_ACCESS_KEY": "hunter2-value",
        "S3_REGION": "eu-west-1",
        "S3_BUCKET_ORIGINALS": "orig",
        "S3_BUCKET_THUMBNAILS": "thumbs",
        "CDN_BASE_URL": "https://cdn.example/",
        "IMAGE_FORMAT": "AVIF",
        "IMAGE_QUALITY": "70",
        "ENABLE_IMAGE_OPTIMIZATION": "false",
        "MAX_IMAGE_FILE_SIZE_MB": "5",
        "DATABASE_URL": "postgresql://u@h/db",
        "ADMIN_API_TOKEN": "token",
        "DAGSTER_GRAPHQL_URL": "http://dagster:3000/graphql",
        "STORAGE_BACKEND": "s3",
        "ALLOWED_SOURCE_HOSTS": "Artworks.TheTVDB.com, 127.0.0.1:8080",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.cdn_base_url == "https://cdn.example"
    assert (
        settings.s3_secret_access_key is not None
        and settings.s3_secret_access_key.get_secret_value() == "hunter2-value"
    )
    assert settings.image_format == "avif"
    assert settings.image_quality == 70
    assert settings.enable_image_optimization is False
    assert settings.max_image_bytes == 5 * 1024 * 1024
    assert settings.resolved_database_url == "postgresql://u@h/db"
    assert settings.storage_backend == "s3"
    assert settings.allowed_source_hosts == ["artworks.thetvdb.com", "127.0.0.1:8080"]
    assert "hunter2-value" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IMAGE_QUALITY=42\nSTORAGE_BACKEND=s3\n")
    settings = load_settings()
    assert settings.image_quality == 42
    assert settings.storage_backend == "s3"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMAGE_QUALITY", "150", "IMAGE_QUALITY: Input should be less than or equal to 100 (got '150')"),
        ("IMAGE_QUALITY", "high", "IMAGE_QUALITY"),
        ("IMAGE_FORMAT", "jpegxl", "IMAGE_FORMAT: Input should be 'webp' or 'avif' (got 'jpegxl')"),
        ("STORAGE_BACKEND", "ftp", "STORAGE_BACKEND"),
        ("MAX_IMAGE_FILE_SIZE_MB", "-1", "MAX_IMAGE_FILE_SIZE_MB"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert message in str(error.value)


def test_cli_reports_bad_configuration_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGE_QUALITY", "150")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "IMAGE_QUALITY" in err and "Traceback" not in err


def test_each_output_format_has_its_own_quality(monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGE_QUALITY is WebP's, IMAGE_QUALITY_AVIF is AVIF's: each reaches the encoder and the
    signature stored with the renditions (so changing either makes renditions stale)."""
    monkeypatch.delenv("IMAGE_QUALITY_AVIF", raising=False)
    monkeypatch.setenv("IMAGE_QUALITY", "80")
    webp = PipelineSettings.from_settings(load_settings())
    monkeypatch.setenv("IMAGE_FORMAT", "avif")
    default_avif = PipelineSettings.from_settings(load_settings())
    monkeypatch.setenv("IMAGE_QUALITY_AVIF", "40")
    avif = PipelineSettings.from_settings(load_settings())
    assert (webp.render.format, webp.render.quality) == ("webp", 80)
    assert (default_avif.render.format, default_avif.render.quality) == ("avif", 70)
    assert (avif.render.format, avif.render.quality) == ("avif", 40)
    assert avif.signature.startswith("avif-q40-") and webp.signature.startswith("webp-q80-")

    source = io.BytesIO()
    Image.effect_noise((400, 300), 64).convert("RGB").save(source, "PNG")
    low = render_renditions(source.getvalue(), avif.render, avif.limits).renditions[0]
    high = render_renditions(source.getvalue(), default_avif.render, default_avif.limits).renditions[0]
    assert low.format == high.format == "avif" and len(low.data) < len(high.data)

    monkeypatch.setenv("IMAGE_QUALITY_AVIF", "0")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "IMAGE_QUALITY_AVIF" in str(error.value)
