"""Object storage: the key layout and two interchangeable backends (local directory, S3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tvdb_images.storage.base import (
    RENDITION_CACHE_CONTROL,
    Bucket,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStream,
    StorageError,
)

if TYPE_CHECKING:
    from tvdb_images.config import Settings

__all__ = [
    "RENDITION_CACHE_CONTROL",
    "Bucket",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStream",
    "StorageError",
    "store_from_settings",
]


def store_from_settings(settings: Settings) -> ObjectStore:
    """Build the object store the settings describe (STORAGE_BACKEND picks local or s3)."""
    names = {Bucket.ORIGINALS: settings.s3_bucket_originals, Bucket.THUMBNAILS: settings.s3_bucket_thumbnails}
    if settings.storage_backend == "s3":
        from tvdb_images.storage.s3 import S3ObjectStore

        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        return S3ObjectStore(
            bucket_names=names,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret,
            region=settings.s3_region,
            cdn_base_url=settings.cdn_base_url,
        )
    from tvdb_images.storage.local import LocalObjectStore

    return LocalObjectStore(
        settings.resolved_local_storage_dir,
        bucket_names=names,
        cdn_base_url=settings.cdn_base_url,
        file_mode=settings.local_storage_file_mode,
        directory_mode=settings.local_storage_dir_mode,
    )
