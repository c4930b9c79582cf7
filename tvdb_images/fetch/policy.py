"""The limits one ImageFetcher works within, as one immutable value.

The pipeline builds a FetchPolicy from its settings; tests build small ones. Invalid values fail at
construction so a typo in configuration does not surface as odd behaviour mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .urls import AllowList

DEFAULT_USER_AGENT = "tvdb-images/0.1 (+https://github.com/tvdb-images/tvdb-images)"


@dataclass(frozen=True)
class FetchPolicy:
    """How, where and how much the fetcher may download.

    allowed_hosts: "host" (any port) or "host:port" entries, case-insensitive. An IP-literal entry
        ("127.0.0.1:8765", "[::1]:8080") is trusted even if the address is private; a host name is
        always refused when it resolves to a non-public address.
    total_timeout: deadline for one attempt (connect, redirects, headers and body together),
        counted from when the attempt gets its per-host slot; DNS lookups are bounded only by the
        system resolver's own timeouts. Each retry gets a fresh deadline, so a fetch lasts at most
        about (max_retries + 1) * total_timeout plus the backoff sleeps, each at most backoff_max.
    backoff_max: the longest wait between attempts; a Retry-After asking for more ends the fetch at
        once with "rate_limited" (retryable), leaving the wait to a later run.
    """

    allowed_hosts: frozenset[str]
    max_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    per_host_concurrency: int = 8
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allow_list: AllowList = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts = self.allowed_hosts
        if isinstance(hosts, str):
            raise TypeError("allowed_hosts must be a collection of host entries, not one string")
        object.__setattr__(self, "allowed_hosts", frozenset(h.strip().lower() for h in hosts))
        object.__setattr__(self, "allow_list", AllowList(self.allowed_hosts))
        positive = {
            "max_bytes": self.max_bytes,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "total_timeout": self.total_timeout,
            "per_host_concurrency": self.per_host_concurrency,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        not_negative = {
            "max_retries": self.max_retries,
            "backoff_base": self.backoff_base,
            "backoff_max": self.backoff_max,
            "max_redirects": self.max_redirects,
        }
        for name, value in not_negative.items():
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
