"""The serving API's HTTP rules on their own: format negotiation, `If-None-Match`, content versions,
the admin rate limiter and Dagster run status mapping."""

from __future__ import annotations

import pytest

from serving.conditional import cache_control, content_version, if_none_match_hits, strong_etag
from serving.negotiation import choose_format, parse_accept
from serving.ratelimit import TokenBucketLimiter
from serving.routes.admin import TASK_STATUS
from serving.schemas import TaskStatus
from serving.stats_cache import StatsCache
from tvdb_images.catalog.stats import StorageStats

BROWSER_WITH_AVIF = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
BROWSER_WITHOUT_AVIF = "image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (BROWSER_WITH_AVIF, "avif"),
        (BROWSER_WITHOUT_AVIF, "webp"),
        ("*/*", "webp"),  # a wildcard is no promise of AVIF support
        ("image/*", "webp"),
        (None, "webp"),
        ("", "webp"),
        ("image/avif", "avif"),
        ("image/webp, image/avif;q=0.5", "webp"),  # the client's q decides first
        ("image/avif;q=0.9, image/webp;q=0.9", "avif"),  # then the smaller encoding
        ("image/avif;q=0, */*", "webp"),
        ("image/jpeg", "webp"),  # nothing acceptable: the default rather than a 406
        ("IMAGE/AVIF;Q=1", "avif"),
        ("image/avif;q=abc, image/webp", "webp"),  # a malformed range is ignored
        ("garbage, ,;;, image/avif", "avif"),
    ],
)
def test_format_negotiation_between_avif_and_webp(accept: str | None, expected: str) -> None:
    assert choose_format(["webp", "avif"], accept) == expected


@pytest.mark.parametrize(
    ("accept", "sizes", "expected"),
    [
        (BROWSER_WITH_AVIF, {"avif": 12_000, "webp": 9_000}, "webp"),  # AVIF larger: WebP it is
        (BROWSER_WITH_AVIF, {"avif": 8_000, "webp": 9_000}, "avif"),
        (BROWSER_WITH_AVIF, {"avif": 9_000, "webp": 9_000}, "avif"),  # a tie keeps the server order
        ("image/avif;q=0.9, image/webp;q=0.9", {"avif": 12_000, "webp": 9_000}, "webp"),
        ("image/webp, image/avif;q=0.5", {"avif": 1_000, "webp": 9_000}, "webp"),  # q decides first
        ("*/*", {"avif": 1_000, "webp": 9_000}, "webp"),  # never AVIF to a client that did not name it
        ("image/avif", {"avif": 12_000, "webp": 9_000}, "avif"),  # the only acceptable one
    ],
)
def test_between_equally_acceptable_formats_the_smaller_encoding_wins(
    accept: str, sizes: dict[str, int], expected: str
) -> None:
    assert choose_format(sizes, accept, sizes) == expected


def test_negotiation_with_one_stored_format_always_sends_it() -> None:
    assert choose_format(["webp"], "image/avif") == "webp"
    assert choose_format(["jpeg"], BROWSER_WITH_AVIF) == "jpeg"
    assert choose_format(["avif"], "image/webp") == "avif"
    with pytest.raises(ValueError):
        choose_format([], "*/*")


def test_accept_parsing_keeps_quality_and_skips_nonsense() -> None:
    ranges = parse_accept("image/webp;q=0.5, */*;q=2, text, */html")
    assert [(r.type, r.subtype, r.quality) for r in ranges] == [("image", "webp", 0.5), ("*", "*", 1.0)]


ETAG = strong_etag("abc123")


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        ('"abc123"', True),
        ('W/"abc123"', True),  # If-None-Match uses the weak comparison
        ('"zzz", "abc123"', True),
        ('"zzz",W/"abc123" ', True),
        ("*", True),
        ('"zzz"', False),
        ('"abc"', False),
        ("abc123", False),  # not a quoted entity tag
        ('"abc123', False),
        ("", False),
        (None, False),
        ('"a,b", "abc123"', True),  # commas inside an entity tag are part of it
    ],
)
def test_if_none_match(header: str | None, hit: bool) -> None:
    assert if_none_match_hits(header, ETAG) is hit


def test_content_version_changes_with_any_checksum_and_ignores_order() -> None:
    assert content_version(["a", "b"]) == content_version(["b", "a"])
    assert content_version(["a", "b"]) != content_version(["a", "c"])
    assert content_version(["a"]) != content_version(["a", "b"])
    assert len(content_version(["a"])) == 16


def test_cache_control_is_immutable_only_for_versioned_urls() -> None:
    assert cache_control(versioned=True, max_age=60) == "public, max-age=31536000, immutable"
    assert cache_control(versioned=False, max_age=60) == "public, max-age=60"


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [1000.0]
    limiter = TokenBucketLimiter(rate_per_second=0.5, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(2.0)
    assert limiter.acquire("b") == 0.0  # another client has its own bucket
    now[0] += 1.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire("a") == 0.0
    now[0] += 100.0  # never more than the burst
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0


def test_token_bucket_forgets_idle_clients_when_full() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate_per_second=1.0, burst=1, clock=lambda: now[0], max_clients=2)
    limiter.acquire("a")
    limiter.acquire("b")
    now[0] += 10
    limiter.acquire("c")
    assert set(limiter._buckets) == {"c"}


def test_every_dagster_run_status_maps_to_a_task_status() -> None:
    from dagster_graphql.schema.pipelines.status import GrapheneRunStatus

    assert {status.name for status in GrapheneRunStatus} == set(TASK_STATUS)
    assert TASK_STATUS["SUCCESS"] is TaskStatus.SUCCEEDED
    assert TASK_STATUS["FAILURE"] is TaskStatus.FAILED
    assert TASK_STATUS["QUEUED"] is TaskStatus.QUEUED


def test_cleanup_range_covers_exactly_the_partitions_dagster_defines() -> None:
    from serving.routes.admin import cleanup_partition_range
    from tvdb_images.defs.partitions import artwork_partitions

    keys = [str(key) for key in artwork_partitions.get_partition_keys()]
    assert cleanup_partition_range(None) == (keys[0], keys[-1])
    series = [key for key in keys if key.startswith("series|")]
    assert cleanup_partition_range("series") == (series[0], series[-1])
    assert keys.index(series[-1]) - keys.index(series[0]) == 255


def test_stats_cache_computes_once_per_period() -> None:
    now = [0.0]
    calls: list[int] = []
    cache = StatsCache(ttl=30, clock=lambda: now[0])

    def compute() -> StorageStats:
        calls.append(1)
        return StorageStats(total_objects=len(calls))

    first, at = cache.get(compute)
    now[0] = 29.9
    assert cache.get(compute) == (first, at) and len(calls) == 1
    now[0] = 30.0
    assert cache.get(compute)[0].total_objects == 2


def test_if_modified_since_applies_only_without_if_none_match() -> None:
    from datetime import UTC, datetime

    from serving.conditional import http_date, not_modified

    stored = datetime(2026, 12, 1, 10, 30, 15, 900_000, tzinfo=UTC)
    assert http_date(stored) == "Tue, 01 Dec 2026 10:30:15 GMT"
    assert not_modified({"if-modified-since": "Tue, 01 Dec 2026 10:30:15 GMT"}, ETAG, stored)
    assert not not_modified({"if-modified-since": "Tue, 01 Dec 2026 10:30:14 GMT"}, ETAG, stored)
    assert not not_modified({"if-modified-since": "yesterday"}, ETAG, stored)
    # If-None-Match decides when present (RFC 9110 §13.2.2), even against a matching date.
    both = {"if-none-match": '"other"', "if-modified-since": "Tue, 01 Dec 2026 10:30:15 GMT"}
    assert not not_modified(both, ETAG, stored)
    assert not not_modified({"if-modified-since": "Tue, 01 Dec 2026 10:30:15 GMT"}, ETAG, None)


@pytest.mark.parametrize("text", ["0", "7", "101", str(2**63 - 1)])
def test_canonical_ids_pass(text: str) -> None:
    from serving.routes.params import canonical_decimal

    assert canonical_decimal(text) == text


@pytest.mark.parametrize(
    "text", ["+1", "-1", "01", "1.0", "1_000", " 1", "1 ", "0x1", "\uff11", "", "1" * 20]
)
def test_non_canonical_ids_are_refused(text: str) -> None:
    from serving.routes.params import canonical_decimal

    with pytest.raises(ValueError):
        canonical_decimal(text)


def test_a_worker_gets_its_share_of_the_budget() -> None:
    share = TokenBucketLimiter.share_of(rate_per_second=1.0, burst=5, workers=2)
    assert (share.rate, share.burst) == (0.5, 2)
    assert TokenBucketLimiter.share_of(1.0, 1, 4).burst == 1  # never below one


def test_accept_parsing_keeps_a_bounded_number_of_ranges() -> None:
    from serving.negotiation import MAX_ACCEPT_RANGES

    assert len(parse_accept(",".join(["image/webp"] * 10_000))) == MAX_ACCEPT_RANGES
    assert choose_format(["webp", "avif"], ",".join(["image/x;q=0.1"] * 10_000) + ",image/avif") == "webp"
