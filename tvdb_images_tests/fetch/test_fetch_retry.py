"""Backoff arithmetic and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tvdb_images.fetch.retry import backoff_delay, parse_retry_after


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        for _ in range(50):
            assert full / 2 <= backoff_delay(attempt, 0.5, 30.0, rng) <= full


def test_backoff_is_capped_and_jittered() -> None:
    delays = {backoff_delay(20, 0.5, 30.0) for _ in range(20)}
    assert all(15.0 <= d <= 30.0 for d in delays)
    assert len(delays) > 1


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
