"""Object storage: the same behaviour from the local-filesystem store and from real SeaweedFS S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tvdb_images.storage import RENDITION_CACHE_CONTROL, Bucket, ObjectNotFound, StorageError
from tvdb_images.storage.local import LocalObjectStore
from tvdb_images.storage.s3 import S3ObjectStore


def test_put_get_head_list_delete(any_store) -> None:
    key = "series/ab/cd/1/poster/large.webp"
    info = any_store.put(
        Bucket.THUMBNAILS, key, b"RIFF-data", content_type="image/webp", cache_control=RENDITION_CACHE_CONTROL
    )
    assert info.size == 9
    assert any_store.get(Bucket.THUMBNAILS, key) == b"RIFF-data"
    head = any_store.head(Bucket.THUMBNAILS, key)
    assert head is not None and head.size == 9 and head.content_type == "image/webp"
    assert abs(head.last_modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert any_store.head(Bucket.ORIGINALS, key) is None  # buckets are separate
    any_store.put(Bucket.THUMBNAILS, "series/ab/cd/1/poster/small.webp", b"x", content_type="image/webp")
    any_store.put(Bucket.THUMBNAILS, "series/ac/cd/2/poster/small.webp", b"y", content_type="image/webp")
    assert [o.key for o in any_store.list(Bucket.THUMBNAILS, "series/ab/")] == [
        key,
        "series/ab/cd/1/poster/small.webp",
    ]
    stream = any_store.open(Bucket.THUMBNAILS, key)
    assert stream.info.size == 9 and b"".join(stream.iter_chunks(4)) == b"RIFF-data"
    assert any_store.delete(Bucket.THUMBNAILS, [key, "series/ab/nothing.webp"]) == 2
    assert any_store.head(Bucket.THUMBNAILS, key) is None
    with pytest.raises(ObjectNotFound):
        any_store.get(Bucket.THUMBNAILS, key)
    with pytest.raises(ObjectNotFound):
        any_store.open(Bucket.THUMBNAILS, key)
    any_store.check()


def test_overwrite_replaces_whole_object(any_store) -> None:
    key = "movies/00/11/5/fanart/original.webp"
    any_store.put(Bucket.THUMBNAILS, key, b"a" * 1000, content_type="image/webp")
    any_store.put(Bucket.THUMBNAILS, key, b"b" * 10, content_type="image/webp")
    assert any_store.get(Bucket.THUMBNAILS, key) == b"b" * 10


def test_s3_objects_carry_content_type_and_cache_control(s3_store: S3ObjectStore, seaweedfs) -> None:
    key = "people/12/34/9/image/thumbnail.webp"
    s3_store.put(
        Bucket.THUMBNAILS,
        key,
        b"webp-bytes",
        content_type="image/webp",
        cache_control=RENDITION_CACHE_CONTROL,
    )
    head = s3_store.client.head_object(Bucket=s3_store.bucket_names[Bucket.THUMBNAILS], Key=key)
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == RENDITION_CACHE_CONTROL
    assert (
        s3_store.url(Bucket.THUMBNAILS, key)
        == f"{seaweedfs.endpoint}/{s3_store.bucket_names[Bucket.THUMBNAILS]}/{key}"
    )


def test_s3_buckets_are_created_when_missing(s3_store: S3ObjectStore) -> None:
    names = {b["Name"] for b in s3_store.client.list_buckets()["Buckets"]}
    assert set(s3_store.bucket_names.values()) <= names
    s3_store.ensure_buckets()  # idempotent


def test_s3_wrong_credentials_are_a_storage_error(seaweedfs, s3_bucket_names) -> None:
    store = S3ObjectStore(
        bucket_names=s3_bucket_names,
        endpoint_url=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key="wrong",
        region="us-east-1",
    )
    with pytest.raises(StorageError):
        store.put(Bucket.THUMBNAILS, "series/aa/bb/1/poster/large.webp", b"x", content_type="image/webp")


def test_unreachable_s3_is_a_storage_error(s3_bucket_names) -> None:
    store = S3ObjectStore(
        bucket_names=s3_bucket_names,
        endpoint_url="http://127.0.0.1:9",
        access_key_id="a",
        secret_access_key="b",
        region="us-east-1",
    )
    with pytest.raises(StorageError):
        store.check()


def test_local_store_refuses_keys_outside_the_bucket(local_store: LocalObjectStore) -> None:
    for key in ("../escape.webp", "/etc/passwd", "series/../../outside", ""):
        with pytest.raises(StorageError):
            local_store.put(Bucket.THUMBNAILS, key, b"x", content_type="image/webp")


def test_local_store_urls_and_cdn(tmp_path) -> None:
    store = LocalObjectStore(tmp_path, cdn_base_url="https://cdn.example")
    assert store.url(Bucket.THUMBNAILS, "a/b.webp") == "https://cdn.example/a/b.webp"
    plain = LocalObjectStore(tmp_path)
    assert plain.url(Bucket.THUMBNAILS, "a/b.webp") == (tmp_path / "thumbnails" / "a" / "b.webp").as_uri()


def test_cdn_url_for_s3(seaweedfs, s3_bucket_names) -> None:
    store = S3ObjectStore(
        bucket_names=s3_bucket_names,
        endpoint_url=seaweedfs.endpoint,
        access_key_id="a",
        secret_access_key="b",
        region="us-east-1",
        cdn_base_url="https://img.example",
    )
    assert store.url(Bucket.THUMBNAILS, "k/x.webp") == "https://img.example/k/x.webp"


def test_s3_object_is_publicly_addressed_by_its_url(s3_store: S3ObjectStore) -> None:
    """The URL recorded in the catalog names the real object: a signed GET of it returns the bytes."""
    key = "series/ff/00/3/banner/small.webp"
    s3_store.put(Bucket.THUMBNAILS, key, b"banner", content_type="image/webp")
    url = s3_store.client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_store.bucket_names[Bucket.THUMBNAILS], "Key": key}, ExpiresIn=60
    )
    assert url.startswith(s3_store.url(Bucket.THUMBNAILS, key))
    assert httpx.get(url).content == b"banner"


def test_list_by_a_partial_prefix_matches_s3_semantics(any_store) -> None:
    """A prefix that ends inside a directory name ("series/a": shards a0 to af) lists the same keys
    on both backends, and nothing outside it."""
    keys = [
        "series/a0/11/1/poster/small.webp",
        "series/af/22/2/fanart/small.webp",
        "series/b0/33/3/poster/small.webp",
        "seasons/a0/44/4/poster/small.webp",
    ]
    for key in keys:
        any_store.put(Bucket.THUMBNAILS, key, b"x", content_type="image/webp")
    assert sorted(o.key for o in any_store.list(Bucket.THUMBNAILS, "series/a")) == keys[:2]
    assert [o.key for o in any_store.list(Bucket.THUMBNAILS, "series/af/22/")] == [keys[1]]
    assert [o.key for o in any_store.list(Bucket.THUMBNAILS, "series/c")] == []


def test_s3_reads_answer_like_boto3(seaweedfs, s3_store: S3ObjectStore, s3_bucket_names) -> None:
    """Reads go through the signed urllib3 path: same bytes and headers as boto3's GetObject, a
    missing key is ObjectNotFound, a refused signature or an unreachable endpoint a StorageError."""
    key = "series/ab/cd/7/poster/medium.webp"
    s3_store.put(Bucket.THUMBNAILS, key, b"w" * 70_000, content_type="image/webp", cache_control="max-age=9")
    stream = s3_store.open(Bucket.THUMBNAILS, key)
    try:
        assert stream.info.size == 70_000 and stream.info.content_type == "image/webp"
        assert stream.info.cache_control == "max-age=9"
        assert b"".join(stream.iter_chunks(16_384)) == b"w" * 70_000
    finally:
        stream.close()
    boto = s3_store.client.get_object(Bucket=s3_bucket_names[Bucket.THUMBNAILS], Key=key)
    assert stream.info.etag == boto["ETag"].strip('"')
    assert stream.info.last_modified == boto["LastModified"]
    with pytest.raises(ObjectNotFound):
        s3_store.get(Bucket.THUMBNAILS, "series/ab/cd/7/poster/none.webp")
    for broken in (
        {"endpoint_url": seaweedfs.endpoint, "secret_access_key": "wrong"},
        {"endpoint_url": "http://127.0.0.1:9", "secret_access_key": seaweedfs.secret_key},
    ):
        store = S3ObjectStore(
            bucket_names=s3_bucket_names, access_key_id=seaweedfs.access_key, region="us-east-1", **broken
        )
        with pytest.raises(StorageError) as error:
            store.get(Bucket.THUMBNAILS, key)
        assert not isinstance(error.value, ObjectNotFound)


def test_s3_reads_reuse_a_fresh_signature_and_sign_again_when_it_ages(
    s3_store: S3ObjectStore, monkeypatch
) -> None:
    """A hot object's GETs share one SigV4 signature for SIGNATURE_REUSE_SECONDS, then sign anew; the
    bytes are right each time, also after the object was overwritten under the same key."""
    from tvdb_images.storage import s3_get

    signed: list[str] = []
    original = s3_get.S3SigV4Auth.add_auth

    def counting(self, request):  # type: ignore[no-untyped-def]
        if request.method == "GET":  # boto3's own PUTs sign through the same class
            signed.append(request.url)
        return original(self, request)

    monkeypatch.setattr(s3_get.S3SigV4Auth, "add_auth", counting)
    clock = [1000.0]
    monkeypatch.setattr(s3_get.time, "monotonic", lambda: clock[0])
    key = "movies/ab/cd/9/poster/small.webp"
    s3_store.put(Bucket.THUMBNAILS, key, b"a" * 5000, content_type="image/webp")
    assert [s3_store.get(Bucket.THUMBNAILS, key) for _ in range(3)] == [b"a" * 5000] * 3
    assert len(signed) == 1
    s3_store.put(Bucket.THUMBNAILS, key, b"b" * 10, content_type="image/webp")
    assert s3_store.get(Bucket.THUMBNAILS, key) == b"b" * 10 and len(signed) == 1
    clock[0] += s3_get.SIGNATURE_REUSE_SECONDS
    assert s3_store.get(Bucket.THUMBNAILS, key) == b"b" * 10 and len(signed) == 2
    s3_store.get(Bucket.THUMBNAILS, key)
    assert len(signed) == 2
