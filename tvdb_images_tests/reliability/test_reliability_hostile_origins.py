"""Hostile origins in a real sync: every misbehaviour ends in its recorded cause within the timeouts.

One partition holds artwork whose origin lies about Content-Type or Content-Length, sends more than
the cap (with and without saying so, or as a gzip bomb), trickles, never answers, loops redirects,
answers 404/410/403/500/429/503, hangs up, or does not speak HTTP, next to good artwork. The
`sync_images` job runs three times on PostgreSQL + SeaweedFS S3, with short timeouts:

1. the run finishes within a bound computed from the fetch settings, and every case is recorded;
2. a second run retries only what may succeed later (never gone, too large or looping sources);
3. once attempts are used up, a third run asks the origin for nothing.
"""

from __future__ import annotations

import gzip
import itertools
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from tvdb_images.catalog import queue
from tvdb_images.catalog.db import Catalog
from tvdb_images.catalog.models import Artwork, ArtworkStatus
from tvdb_images.catalog.scope import Scope
from tvdb_images.pipeline.settings import PipelineSettings
from tvdb_images.storage import Bucket
from tvdb_images.storage.layout import shard_of
from tvdb_images_tests.support.convergence import audit
from tvdb_images_tests.support.origins import (
    Behaviour,
    LoopbackOrigin,
    OriginHandler,
    endless,
    hang,
    redirect,
    respond,
    sequence,
    short_body,
    trickle,
)
from tvdb_images_tests.support.reliability_log import record
from tvdb_images_tests.support.reliability_setup import (
    import_items,
    one_partition_items,
    production_settings,
    run_sync_images,
)
from tvdb_images_tests.support.services import SeaweedFS

CAP_MB = 1
CAP = CAP_MB * 1024 * 1024
TIMEOUT = 2.0  # FETCH_TOTAL_TIMEOUT_SECONDS: one attempt, connect to last byte
RETRIES = 1  # FETCH_MAX_RETRIES: in-run retries of a transient failure
ATTEMPTS = 2  # ARTWORK_MAX_ATTEMPTS: runs that may try one artwork


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    behaviour: Behaviour
    status: str  # what the artwork row must end as after the first run
    cause: str | None
    first_run_requests: int  # requests the origin sees in the first run
    retried_by_next_run: bool


class Arrivals:
    """When each request for a path arrived, to check the waits between retries."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wrap(self, behaviour: Behaviour) -> Behaviour:
        def run(handler: OriginHandler) -> None:
            with self._lock:
                self.times.setdefault(handler.route_path, []).append(time.monotonic())
            behaviour(handler)

        return run

    def gaps(self, path: str) -> list[float]:
        times = self.times.get(path, [])
        return [later - earlier for earlier, later in itertools.pairwise(times)]


def _hang_up(handler: OriginHandler) -> None:
    """Read the request, then close the connection without a word."""
    handler.close_connection = True


def _not_http(handler: OriginHandler) -> None:
    handler.close_connection = True
    handler.write(b"SSH-2.0-OpenSSH_9.2\r\nthis is not an HTTP response\r\n\r\n")


def _declares_over_cap(handler: OriginHandler) -> None:
    handler.close_connection = True
    handler.send_head(200, {"Content-Type": "image/jpeg", "Content-Length": str(CAP * 4)})
    handler.write(b"\xff\xd8\xff" + b"\0" * 65536)


def _cases(corpus: Path) -> list[Case]:
    jpeg = (corpus / "tvdb" / "person_a.jpg").read_bytes()
    png = (corpus / "edge" / "grey-8bit-alpha.png").read_bytes()
    gzip_bomb = gzip.compress(b"\0" * (CAP * 32), compresslevel=9)
    ok = respond(200, jpeg, {"Content-Type": "image/jpeg"})
    retry = RETRIES + 1
    return [
        Case("JPEG sent as text/html", "/ok/html.jpg", respond(200, jpeg, {"Content-Type": "text/html"}),
             "processed", None, 1, False),
        Case("PNG with no Content-Type", "/ok/plain.png", respond(200, png), "processed", None, 1, False),
        Case("500, then the image", "/ok/flaky.jpg", sequence(respond(500), ok), "processed", None, 2, False),
        Case("429 Retry-After: 1, then the image", "/ok/busy.jpg",
             sequence(respond(429, b"", {"Retry-After": "1"}), ok), "processed", None, 2, False),
        Case("302 to the image", "/ok/moved.jpg", redirect("/ok/here.jpg"), "processed", None, 1, False),
        Case("Content-Length that lies (1,000 of 50,000 bytes sent)", "/bad/short.jpg",
             short_body(50_000, jpeg[:1000], {"Content-Type": "image/jpeg"}),
             "failed", "length_mismatch", retry, True),
        Case(f"Content-Length over the {CAP_MB} MiB cap", "/bad/declared-huge.jpg", _declares_over_cap,
             "failed", "too_large", 1, False),
        Case(f"body over the {CAP_MB} MiB cap, no Content-Length", "/bad/endless.jpg", endless(),
             "failed", "too_large", 1, False),
        Case("gzip bomb (32 MiB of zeros in 32 KiB)", "/bad/bomb.jpg",
             respond(200, gzip_bomb, {"Content-Type": "image/jpeg", "Content-Encoding": "gzip"}),
             "failed", "too_large", 1, False),
        Case("trickles a byte a second", "/bad/trickle.png", trickle(1.0), "failed", "timeout", retry, True),
        Case("accepts, never answers", "/bad/hang.jpg", hang, "failed", "timeout", retry, True),
        Case("redirect loop", "/bad/loop-a.jpg", redirect("/bad/loop-b.jpg"), "failed", "redirect_loop", 1,
             False),
        Case("endless redirect chain", "/bad/chain/0", redirect("/bad/chain/1"), "failed",
             "too_many_redirects", 1, False),
        Case("404", "/bad/404.jpg", respond(404, b"not found"), "gone", "gone", 1, False),
        Case("410", "/bad/410.jpg", respond(410, b"gone"), "gone", "gone", 1, False),
        Case("403", "/bad/403.jpg", respond(403, b"forbidden"), "failed", "http_error", 1, False),
        Case("500 every time", "/bad/500.jpg", respond(500, b"oops"), "failed", "server_error", retry, True),
        Case("429 Retry-After: 1 every time", "/bad/429.jpg", respond(429, b"", {"Retry-After": "1"}),
             "failed", "rate_limited", retry, True),
        Case("503 Retry-After: 3600", "/bad/503.jpg", respond(503, b"", {"Retry-After": "3600"}),
             "failed", "rate_limited", 1, True),
        Case("hangs up without answering", "/bad/hangup.jpg", _hang_up, "failed", "connection_error", retry,
             True),
        Case("answers in another protocol", "/bad/not-http.jpg", _not_http, "failed", "connection_error",
             retry, True),
    ]  # fmt: skip


def _worst_fetch_seconds(settings: PipelineSettings) -> float:
    """The longest one fetch may take: every attempt to its deadline plus the backoff waits between."""
    policy = settings.fetch
    waits = sum(min(policy.backoff_max, policy.backoff_base * 2**i) for i in range(policy.max_retries))
    return (policy.max_retries + 1) * policy.total_timeout + waits


def test_hostile_origins_end_in_their_recorded_cause_within_bounded_time(
    postgres_catalog: Catalog,
    seaweedfs: SeaweedFS,
    s3_bucket_names: dict[Bucket, str],
    s3_store,
    corpus_dir: Path,
) -> None:
    cases = _cases(corpus_dir)
    arrivals = Arrivals()
    with LoopbackOrigin() as origin:
        for case in cases:
            origin.route(case.path, arrivals.wrap(case.behaviour))
        origin.route("/bad/loop-b.jpg", redirect("/bad/loop-a.jpg"))
        origin.route("/ok/here.jpg", respond(200, (corpus_dir / "tvdb" / "banner_a.jpg").read_bytes()))
        for step in range(1, 20):
            origin.route(f"/bad/chain/{step}", redirect(f"/bad/chain/{step + 1}"))

        items = one_partition_items("movies", [origin.url(case.path) for case in cases])
        import_items(postgres_catalog, items)
        shard = shard_of("movies", items[0].content_id)
        settings = production_settings(
            postgres_catalog.url,
            seaweedfs,
            s3_bucket_names,
            ALLOWED_SOURCE_HOSTS=origin.netloc,
            MAX_IMAGE_FILE_SIZE_MB=CAP_MB,
            FETCH_CONNECT_TIMEOUT_SECONDS=1,
            FETCH_READ_TIMEOUT_SECONDS=1,
            FETCH_TOTAL_TIMEOUT_SECONDS=TIMEOUT,
            FETCH_MAX_RETRIES=RETRIES,
            ARTWORK_MAX_ATTEMPTS=ATTEMPTS,
        )
        pipeline = PipelineSettings.from_settings(settings)
        worst_fetch = _worst_fetch_seconds(pipeline)
        slots = pipeline.fetch.per_host_concurrency
        # Every fetch overlaps with others up to the per-host limit; rendering and the run around the
        # stages get a fixed allowance on top.
        bound = math.ceil(len(cases) / slots) * worst_fetch + 20

        started = time.monotonic()
        assert run_sync_images(settings, "movies", shard).success
        first_run = time.monotonic() - started
        first_hits = {case.path: origin.hits(case.path) for case in cases}
        endless_sent = origin.sent_bytes["/bad/endless.jpg"]

        second_started = time.monotonic()
        assert run_sync_images(settings, "movies", shard).success
        second_run = time.monotonic() - second_started
        second_hits = {case.path: origin.hits(case.path) for case in cases}
        assert run_sync_images(settings, "movies", shard).success
        third_hits = {case.path: origin.hits(case.path) for case in cases}

    with postgres_catalog.session() as session:
        rows = {row.source_url: row for row in session.scalars(select(Artwork))}
        counts = queue.count_work(
            session,
            Scope(partitions=(("movies", shard),)),
            max_attempts=ATTEMPTS,
            signature=pipeline.signature,
        )

    for case in cases:
        row = rows[origin.url(case.path)]
        record(
            "hostile_origin",
            case=case.name,
            recorded=f"{row.status}" + (f": {row.failure_cause}" if row.failure_cause else ""),
            requests_run_1=first_hits[case.path],
            requests_after_3_runs=third_hits[case.path],
            attempts=row.attempts,
        )
        assert (row.status, row.failure_cause) == (case.status, case.cause), (case.name, row.failure_detail)
        assert first_hits[case.path] == case.first_run_requests, case.name
        if case.status != ArtworkStatus.PROCESSED:
            assert row.failure_detail, case.name
            assert row.failure_retryable is case.retried_by_next_run, case.name
            assert row.attempts == (ATTEMPTS if case.retried_by_next_run else 1), case.name
            expected_second = first_hits[case.path] * (2 if case.retried_by_next_run else 1)
            assert second_hits[case.path] == expected_second, case.name
        assert third_hits[case.path] == second_hits[case.path], f"{case.name} was asked for again"

    record("hostile_origin_run", run="first sync (all cases at once)", seconds=round(first_run, 1),
           bound=round(bound, 1))  # fmt: skip
    record("hostile_origin_run", run="second sync (retries only)", seconds=round(second_run, 1),
           bound=round(bound, 1))  # fmt: skip
    assert first_run < bound and second_run < bound, (first_run, second_run, bound)
    assert endless_sent < 16 * CAP, f"the fetcher read {endless_sent} bytes of an endless body"
    # Retry-After was honoured between attempts.
    for path in ("/ok/busy.jpg", "/bad/429.jpg"):
        assert all(gap >= 0.95 for gap in arrivals.gaps(path)), (path, arrivals.gaps(path))
    assert counts["to_download"] == 0 and counts["to_render"] == 0
    result = audit(postgres_catalog, s3_store, [("movies", shard)])
    assert result.unsettled == [] and result.missing == [] and result.unreferenced == set()
    assert result.processed == sum(1 for case in cases if case.status == "processed")
