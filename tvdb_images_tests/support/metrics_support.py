"""Reading the API's `/metrics` answers in tests: the Prometheus text parsed into samples."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

IMAGE_ROUTE = "/api/v1/images/{content_type}/{content_id}/{image_type}/{size}"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    wanted = set((labels or {}).items())
    return sum(v for (n, lab), v in samples(text).items() if n == name and wanted <= set(lab))


def label_values(text: str, label: str) -> set[str]:
    return {dict(lab)[label] for (_n, lab) in samples(text) if label in dict(lab)}
