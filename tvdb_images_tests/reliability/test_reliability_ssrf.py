"""No SSRF from catalog URLs, at the level of a real sync.

A second loopback server stands for an internal service (an admin port, a metadata endpoint): it
counts every TCP connection it accepts. The catalog names it directly, through other spellings of
loopback, through an allow-listed host *name* that resolves to loopback, with credentials, with
non-HTTP schemes, and through redirects from the allowed origin. After a `sync_images` run on
PostgreSQL + SeaweedFS S3, every such artwork is failed with `forbidden_host`, `private_address` or
`bad_url`, the good artwork beside them is processed, and the internal target saw zero connections.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType

from sqlalchemy import select

from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.origins import LoopbackOrigin, redirect, respond
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import (
    import_items,
    one_partition_items,
    production_settings,
    run_sync_images,
)
from tvdb_images_tests.support.services import SeaweedFS
from tvdb_images_tests.support.waiting import wait_until


class InternalTarget:
    """A listening socket on 127.0.0.1 that counts (and answers nothing to) every connection."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def __enter__(self) -> InternalTarget:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


def test_catalog_urls_never_reach_internal_addresses(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    corpus_dir: Path,
) -> None:
    with LoopbackOrigin() as origin, InternalTarget() as internal:
        p1, p2 = origin.port, internal.port
        inside = f"127.0.0.1:{p2}"
        # (how the table shows it, catalog URL, cause the row must record)
        direct = [
            ("internal port, not allowed", f"http://{inside}/admin", "forbidden_host"),
            ("allow-listed name resolving to loopback", f"http://localhost:{p2}/admin", "private_address"),
            ("IPv6 loopback", f"http://[::1]:{p2}/admin", "forbidden_host"),
            ("0.0.0.0", f"http://0.0.0.0:{p2}/admin", "forbidden_host"),
            ("decimal IPv4 (2130706433)", f"http://2130706433:{p2}/admin", "forbidden_host"),
            ("IPv4-mapped IPv6", f"http://[::ffff:127.0.0.1]:{p2}/admin", "forbidden_host"),
            ("cloud metadata", "http://169.254.169.254/latest/meta-data/iam/", "forbidden_host"),
            ("credentials in the URL", f"http://user:secret@127.0.0.1:{p1}/creds.jpg", "bad_url"),
            ("file: scheme", "file:///etc/passwd", "bad_url"),
            ("ftp: scheme", f"ftp://{inside}/poster.jpg", "bad_url"),
            ("gopher: scheme", f"gopher://{inside}/_GET%20/", "bad_url"),
            ("javascript: scheme", "javascript:alert(1)", "bad_url"),
            ("no host", "http:///etc/passwd", "bad_url"),
        ]
        redirects = [
            ("redirect to the internal port", f"http://{inside}/admin", "forbidden_host"),
            (
                "redirect to an allow-listed name on loopback",
                f"http://localhost:{p2}/admin",
                "private_address",
            ),
            ("redirect to cloud metadata", "http://169.254.169.254/latest/meta-data/", "forbidden_host"),
            ("redirect to IPv6 loopback", f"http://[::1]:{p2}/", "forbidden_host"),
            ("redirect to file:", "file:///etc/passwd", "bad_url"),
            ("redirect adding credentials", f"http://user:pw@127.0.0.1:{p1}/creds.jpg", "bad_url"),
        ]
        cases = list(direct)
        for index, (name, location, cause) in enumerate(redirects):
            path = f"/redirect/{index}.jpg"
            origin.route(path, redirect(location))
            cases.append((name, origin.url(path), cause))
        good_url = origin.url("/ok.jpg")
        origin.route("/ok.jpg", respond(200, (corpus_dir / "tvdb" / "person_b.jpg").read_bytes()))
        origin.route("/creds.jpg", respond(200, (corpus_dir / "tvdb" / "person_a.jpg").read_bytes()))

        items = one_partition_items("people", [url for _, url, _ in cases] + [good_url])
        import_items(postgres_catalog, items)
        shard = shard_of("people", items[0].content_id)
        settings = production_settings(
            postgres_catalog.url,
            seaweedfs,
            s3_bucket_names,
            # The test origin by its IP literal (trusted exactly), plus a host *name* that resolves to
            # loopback: an allow-listed name must still never reach a private address.
            ALLOWED_SOURCE_HOSTS=f"{origin.netloc},localhost:{p2}",
            FETCH_MAX_RETRIES=0,
        )
        # The target does count: one connection made here on purpose is seen.
        socket.create_connection(("127.0.0.1", p2), timeout=2).close()
        wait_until(lambda: internal.connections >= 1, 5, 0.01, "the connection made here was not seen")
        assert internal.connections == 1

        assert run_sync_images(settings, "people", shard).success
        redirect_hits = [origin.hits(f"/redirect/{index}.jpg") for index in range(len(redirects))]
        credential_hits = origin.hits("/creds.jpg")
        connections = internal.connections - 1

    with postgres_catalog.session() as session:
        rows = {row.source_url: row for row in session.scalars(select(Artwork))}
    for name, url, cause in cases:
        row = rows[url]
        shown = url.replace(str(p1), "ORIGIN").replace(str(p2), "INTERNAL")
        record("ssrf", case=name, url=f"`{shown}`", recorded=f"{row.status}: {row.failure_cause}")
        assert (row.status, row.failure_cause) == (ArtworkStatus.FAILED, cause), (name, row.failure_detail)
        assert not row.failure_retryable and row.attempts == 1
    assert rows[good_url].status == ArtworkStatus.PROCESSED
    assert redirect_hits == [1] * len(redirects)  # the allowed origin was asked once; the hop refused
    assert credential_hits == 0
    record("ssrf_target", target="internal service on 127.0.0.1", connections=connections)
    assert connections == 0
    result = audit(postgres_catalog, s3_store, [("people", shard)])
    assert result.missing == [] and result.unreferenced == set() and result.processed == 1
