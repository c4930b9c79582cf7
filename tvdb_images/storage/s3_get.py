"""Object GETs on the read path: one SigV4-signed urllib3 request each, no boto3 client call.

A boto3 `GetObject` spends most of its CPU in botocore's machinery around the request (parameter
validation, event hooks, endpoint rules, response parsing), not in signing or HTTP: measured against
SeaweedFS (docs/performance.md, section 5), one `GetObject` of a 33 KB object cost several times the
CPU of signing the same request with botocore's own `S3SigV4Auth` and sending it with urllib3, the
HTTP library boto3 itself uses. On the serving path, where every byte-cache miss is one GET, that
overhead bounded throughput. Writes, listings and deletes stay on boto3.

A signature is reused for the same object for up to SIGNATURE_REUSE_SECONDS (S3 accepts a signed
request for 15 minutes after its `x-amz-date`): a hot object read again costs no second SigV4 derivation
(about 0.4 ms of CPU per GET, docs/performance.md section 5). The reuse is bounded in time and in
entries, and the credentials are read afresh for every new signature.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

from tvdb_images.storage.base import ObjectInfo, ObjectNotFound, ObjectStream, StorageError

# Statuses worth another try: the store is busy or restarting, the object may well be there.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
SIGNATURE_REUSE_SECONDS = 60.0  # well inside S3's 15 minutes, and short of any credential rotation
SIGNATURE_ENTRIES = 4096  # signed headers kept (about 1 KB each), least recently used dropped


class SignedGetter:
    """Signs and sends GETs of whole objects through one connection pool (thread-safe)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        credentials: Any,
        region: str,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        attempts: int,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self._credentials = credentials  # botocore credentials; refreshable ones renew themselves
        self._region = region or "us-east-1"
        self._signed: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._signed_lock = threading.Lock()
        self._pool = urllib3.PoolManager(
            maxsize=max_connections,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=attempts - 1,
                backoff_factor=0.1,
                status_forcelist=_RETRY_STATUSES,
                allowed_methods={"GET"},
                raise_on_status=False,
                redirect=0,
            ),
        )

    def open(self, bucket_name: str, key: str) -> ObjectStream:
        """The object's headers, and its body as a stream; ObjectNotFound or StorageError otherwise."""
        url = f"{self.endpoint_url}/{quote(bucket_name)}/{quote(key, safe='/~')}"
        try:
            response = self._pool.request("GET", url, headers=self._headers(url), preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError(f"S3 get_object failed: {exc}") from exc
        if response.status != 200:
            status = response.status
            response.drain_conn()
            response.release_conn()
            if status == 404:
                raise ObjectNotFound(f"{bucket_name}/{key}")
            raise StorageError(f"S3 get_object failed: HTTP {status}")
        headers = response.headers
        info = ObjectInfo(
            key=key,
            size=int(headers["Content-Length"]),
            last_modified=parsedate_to_datetime(headers["Last-Modified"]),
            etag=(headers.get("ETag") or "").strip('"') or None,
            content_type=headers.get("Content-Type"),
            cache_control=headers.get("Cache-Control"),
        )
        return ObjectStream(info=info, body=_Body(response))

    def _headers(self, url: str) -> dict[str, str]:
        """Signed GET headers for `url`: reused while fresh, else signed now."""
        now = time.monotonic()
        with self._signed_lock:
            found = self._signed.get(url)
            if found is not None and now - found[0] < SIGNATURE_REUSE_SECONDS:
                self._signed.move_to_end(url)
                return found[1]
        request = AWSRequest(method="GET", url=url)
        S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
        headers = dict(request.headers.items())
        with self._signed_lock:
            self._signed[url] = (now, headers)
            self._signed.move_to_end(url)
            while len(self._signed) > SIGNATURE_ENTRIES:
                self._signed.popitem(last=False)
        return headers

    def close(self) -> None:
        self._pool.clear()
        with self._signed_lock:
            self._signed.clear()


class _Body:
    """A urllib3 response as the file-like body an ObjectStream holds.

    Read to its end, the connection goes back to the pool by itself; closed before that, the
    connection is dropped rather than reused with unread bytes on it.
    """

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def read(self, amount: int | None = None) -> bytes:
        try:
            return self._response.read(amount)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError(f"S3 get_object body failed: {exc}") from exc

    def close(self) -> None:
        self._response.close()
