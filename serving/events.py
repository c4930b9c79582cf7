"""What the serving code tells the metrics about, as calls on a `Recorder`.

The caches and the image delivery call these; with METRICS_ENABLED=false they get this no-op base, so
the code paths are the same either way and none of them imports prometheus-client.
"""

from __future__ import annotations


class Recorder:
    """The no-op recorder; `serving.metrics.ServingMetrics` counts."""

    def lookup(self, hit: bool) -> None:
        """A catalog lookup answered from the per-process cache (hit) or from the catalog (miss)."""

    def byte_cache(self, hit: bool) -> None:
        """A rendition small enough for the byte cache was found there (hit) or read from storage."""

    def byte_cache_size(self, used_bytes: int) -> None:
        """The byte cache holds this many bytes now."""


NO_RECORDER = Recorder()
