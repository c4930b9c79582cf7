"""How long to wait before trying a failed request again (the retrying is tvdb_images.retrying's).

Exponential backoff with jitter spreads retries from many worker threads so they do not hit a
recovering server in lockstep; a server's own Retry-After wins when it gives one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base*2^(n-1), jittered, capped.

    "Equal jitter": half the delay is fixed so a retry never comes immediately, half is random.
    """
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP-date), None if absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
