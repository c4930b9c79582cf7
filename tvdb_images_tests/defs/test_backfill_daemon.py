"""The deployed daemon (`python -m tvdb_images.deployment.daemon`) looks at backfills every few seconds:
Dagster's own backfill loop, run with the interval it sets, iterates that often."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from dagster._daemon import controller
from dagster._daemon.backfill import execute_backfill_iteration_loop

from tvdb_images.deployment import daemon


class _NoBackfills:
    """An instance with no backfill in progress that notes when the loop asks."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def get_backfills(self, **_: Any) -> list[object]:
        self.asked.append(time.monotonic())
        return []


class _Context:
    def __init__(self, instance: _NoBackfills) -> None:
        self.instance = instance


def _iterations(seconds: float) -> int:
    instance = _NoBackfills()
    until = time.time() + seconds
    for _ in execute_backfill_iteration_loop(
        _Context(instance),  # type: ignore[arg-type]
        logging.getLogger("test"),
        threading.Event(),
        until=until,
    ):
        pass
    return len(instance.asked) // 3  # requested, canceling and failing backfills: three queries a look


def test_the_backfill_loop_iterates_at_the_interval_the_daemon_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    dagster_default = controller.DEFAULT_DAEMON_INTERVAL_SECONDS
    monkeypatch.setattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", dagster_default)  # restored after
    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS == 30  # Dagster's, which the daemon replaces
    assert _iterations(1.5) == 1  # at 30 s, one look in 1.5 s
    daemon.use_backfill_interval(1)
    assert _iterations(3.5) in (3, 4)  # at 1 s: one at once, then one a second
    daemon.use_backfill_interval()
    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS == daemon.BACKFILL_INTERVAL_SECONDS == 5
