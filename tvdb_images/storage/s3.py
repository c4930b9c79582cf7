"""S3-compatible object store (AWS S3, MinIO, SeaweedFS) over boto3.

A single S3 PUT is atomic, so an object is either absent or complete: the pipeline never leaves a
partial upload behind a key. Path-style addressing keeps MinIO and SeaweedFS endpoints working.
Reads (`open`, `get`) go through `s3_get.SignedGetter`, with the same credentials, endpoint,
timeouts and number of attempts, at a fraction of boto3's CPU per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tvdb_images.storage.base import Bucket, ObjectInfo, ObjectNotFound, ObjectStream, StorageError
from tvdb_images.storage.s3_get import SignedGetter

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_CONNECT_TIMEOUT = 5
_READ_TIMEOUT = 30
_ATTEMPTS = 4


class S3ObjectStore:
    backend = "s3"

    def __init__(
        self,
        *,
        bucket_names: dict[Bucket, str],
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str,
        cdn_base_url: str | None = None,
        max_connections: int = 32,
        client: Any | None = None,
    ) -> None:
        self.bucket_names = bucket_names
        self.endpoint_url = endpoint_url
        self.region = region
        self.cdn_base_url = cdn_base_url
        self._getter: SignedGetter | None = None
        if client is not None:  # a caller's own client (its own retries, timeouts): every call uses it
            self._client = client
            return
        session = boto3.session.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key
        )
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                max_pool_connections=max_connections,
                connect_timeout=_CONNECT_TIMEOUT,
                read_timeout=_READ_TIMEOUT,
                retries={"mode": "standard", "max_attempts": _ATTEMPTS},
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        credentials = session.get_credentials()
        if credentials is not None:
            self._getter = SignedGetter(
                endpoint_url=self._client.meta.endpoint_url,
                credentials=credentials,
                region=region,
                max_connections=max_connections,
                connect_timeout=_CONNECT_TIMEOUT,
                read_timeout=_READ_TIMEOUT,
                attempts=_ATTEMPTS,
            )

    @property
    def client(self) -> Any:
        return self._client

    def ensure_buckets(self) -> None:
        for bucket in Bucket:
            name = self.bucket_names[bucket]
            try:
                self._client.head_bucket(Bucket=name)
                continue
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND_CODES:
                    raise StorageError(f"cannot reach bucket {name}: {exc}") from exc
            except BotoCoreError as exc:
                where = self.endpoint_url or "AWS (S3_ENDPOINT_URL is not set)"
                raise StorageError(f"cannot reach S3 at {where}: {exc}") from exc
            kwargs: dict[str, Any] = {"Bucket": name}
            if self.region and self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._client.create_bucket(**kwargs)
            except ClientError as exc:
                if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise StorageError(f"cannot create bucket {name}: {exc}") from exc

    def put(
        self, bucket: Bucket, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        extra: dict[str, Any] = {"ContentType": content_type}
        if cache_control:
            extra["CacheControl"] = cache_control
        response = self._call("put_object", Bucket=self.bucket_names[bucket], Key=key, Body=data, **extra)
        return ObjectInfo(
            key=key,
            size=len(data),
            last_modified=datetime.now(UTC),
            etag=_strip_etag(response.get("ETag")),
            content_type=content_type,
            cache_control=cache_control,
        )

    def get(self, bucket: Bucket, key: str) -> bytes:
        stream = self.open(bucket, key)
        try:
            return stream.body.read()
        finally:
            stream.close()

    def open(self, bucket: Bucket, key: str) -> ObjectStream:
        if self._getter is not None:
            return self._getter.open(self.bucket_names[bucket], key)
        response = self._call("get_object", Bucket=self.bucket_names[bucket], Key=key)
        info = ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            last_modified=response["LastModified"],
            etag=_strip_etag(response.get("ETag")),
            content_type=response.get("ContentType"),
            cache_control=response.get("CacheControl"),
        )
        return ObjectStream(info=info, body=response["Body"])

    def head(self, bucket: Bucket, key: str) -> ObjectInfo | None:
        try:
            response = self._call("head_object", Bucket=self.bucket_names[bucket], Key=key)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            last_modified=response["LastModified"],
            etag=_strip_etag(response.get("ETag")),
            content_type=response.get("ContentType"),
            cache_control=response.get("CacheControl"),
        )

    def list(self, bucket: Bucket, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket_names[bucket], Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        last_modified=item["LastModified"],
                        etag=_strip_etag(item.get("ETag")),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {bucket.value}/{prefix}: {exc}") from exc

    def delete(self, bucket: Bucket, keys: Iterable[str]) -> int:
        pending = list(keys)
        for start in range(0, len(pending), 1000):
            batch = pending[start : start + 1000]
            response = self._call(
                "delete_objects",
                Bucket=self.bucket_names[bucket],
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                raise StorageError(f"could not delete {len(errors)} objects, first: {errors[0]}")
        return len(pending)

    def url(self, bucket: Bucket, key: str) -> str:
        if self.cdn_base_url:
            return f"{self.cdn_base_url}/{key}"
        name = self.bucket_names[bucket]
        if self.endpoint_url:
            return f"{self.endpoint_url}/{name}/{key}"
        return f"https://{name}.s3.{self.region}.amazonaws.com/{key}"

    def check(self) -> None:
        for bucket in Bucket:
            try:
                self._client.head_bucket(Bucket=self.bucket_names[bucket])
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"bucket {self.bucket_names[bucket]} is not reachable: {exc}") from exc

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(f"{kwargs.get('Bucket')}/{kwargs.get('Key')}") from exc
            raise StorageError(f"S3 {operation} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {operation} failed: {exc}") from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None
