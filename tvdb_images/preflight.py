"""Checks run once at start, before any work: the catalog database and object storage the settings
name must exist and answer. Each problem becomes one `ConfigError` of one or two lines naming the
setting and what to do, instead of every Dagster run failing later with the same stack trace."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tvdb_images.catalog.db import create_catalog_engine, normalize_database_url
from tvdb_images.config import ConfigError, Settings

CONNECT_TIMEOUT_SECONDS = 5
_MISSING_BUCKET_CODES = {"404", "NoSuchBucket", "NotFound"}
_REJECTED_CREDENTIAL_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def check_dependencies(settings: Settings, *, storage: bool = True, reach_storage: bool = True) -> None:
    """Everything a command needs: the watermark file (if any), the catalog database, and (with
    `storage`) the object store's settings and (with `reach_storage`) the store itself."""
    check_watermark(settings)
    check_database(settings.resolved_database_url)
    if storage:
        check_s3_credentials(settings)
        if reach_storage:
            check_storage(settings)


def check_watermark(settings: Settings) -> None:
    """WATERMARK_IMAGE, when set, is a readable PNG with alpha of bounded size (one-line ConfigError)."""
    from tvdb_images.pipeline.settings import watermark_from_settings  # Pillow only when needed

    watermark_from_settings(settings)


def check_database(url: str) -> None:
    """Connect once; a database that does not exist or a server that does not answer is a ConfigError."""
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = create_catalog_engine(url)  # creates the file's directory
    else:
        engine = create_engine(parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        raise ConfigError(_database_message(parsed, exc)) from None
    except OSError as exc:  # SQLite: a directory that cannot be created or written
        raise ConfigError(f"DATABASE_URL: cannot open {parsed.database}: {exc}") from None
    finally:
        engine.dispose()


def _database_message(parsed, exc: SQLAlchemyError) -> str:
    reason = _first_line(str(getattr(exc, "orig", None) or exc))
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if parsed.get_backend_name() == "sqlite":
        return f"DATABASE_URL: cannot open the SQLite catalog {parsed.database}: {reason}"
    if "does not exist" in reason and parsed.database and f'"{parsed.database}"' in reason:
        user = f" -U {parsed.username}" if parsed.username else ""
        return (
            f'DATABASE_URL: database "{parsed.database}" does not exist on {where}\n'
            f"  create it (createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432}{user} "
            f"{parsed.database}) or set DATABASE_URL to an existing database"
        )
    return (
        f"DATABASE_URL: cannot connect to the catalog database at {where} ({reason})\n"
        "  start the database server, or correct DATABASE_URL"
    )


def check_s3_credentials(settings: Settings) -> None:
    """STORAGE_BACKEND=s3 needs credentials: S3_* settings, or boto3's own (AWS_* variables, profile)."""
    if settings.storage_backend != "s3":
        return
    if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
        given, missing = (
            ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
            if settings.s3_access_key_id
            else ("S3_SECRET_ACCESS_KEY", "S3_ACCESS_KEY_ID")
        )
        raise ConfigError(f"{missing}: not set, but {given} is: set both (STORAGE_BACKEND=s3)")
    if settings.s3_access_key_id:
        return
    if _session(settings).get_credentials() is None:
        raise ConfigError(
            "STORAGE_BACKEND=s3 but no S3 credentials are set\n"
            "  set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, and S3_ENDPOINT_URL for MinIO or "
            "SeaweedFS (unset means AWS); or STORAGE_BACKEND=local"
        )


def check_storage(settings: Settings) -> None:
    """The S3 server answers and accepts the credentials (missing buckets are fine: they are created)."""
    if settings.storage_backend != "s3":
        return
    where = s3_description(settings)
    client = _session(settings).client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=CONNECT_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )
    for bucket in (settings.s3_bucket_originals, settings.s3_bucket_thumbnails):
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_BUCKET_CODES:
                continue
            if code in _REJECTED_CREDENTIAL_CODES:
                raise ConfigError(
                    f"S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: {where} refused them for bucket {bucket} "
                    f"({code})\n  set credentials that may read and write {bucket}"
                ) from None
            raise ConfigError(f"S3: bucket {bucket} at {where}: {_first_line(str(exc))}") from None
        except (BotoCoreError, ValueError) as exc:
            reason = _first_line(str(exc))
            if settings.s3_endpoint_url:
                message = (
                    f"S3_ENDPOINT_URL: cannot reach {where} ({reason})\n"
                    "  start the S3 server, or correct S3_ENDPOINT_URL"
                )
            else:
                message = (
                    f"S3_ENDPOINT_URL is not set, so STORAGE_BACKEND=s3 means {where}, which cannot be "
                    f"reached ({reason})\n  set S3_ENDPOINT_URL to your S3 server (MinIO, SeaweedFS)"
                )
            raise ConfigError(message) from None


def s3_description(settings: Settings) -> str:
    """Where the S3 backend points, for messages: the endpoint, or AWS when none is set."""
    if settings.s3_endpoint_url:
        return f"the S3 server at {settings.s3_endpoint_url}"
    return f"AWS S3 ({settings.s3_region})"


def _session(settings: Settings) -> boto3.session.Session:
    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return boto3.session.Session(
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret,
        region_name=settings.s3_region,
    )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text
