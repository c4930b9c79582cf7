"""`dagster-daemon`, whose backfill daemon looks at backfills every few seconds instead of every 30.

    python -m tvdb_images.deployment.daemon run -w dagster/workspace.production.yaml

Dagster 1.13.27's backfill daemon sleeps `DEFAULT_DAEMON_INTERVAL_SECONDS` (30 s, in
`dagster._daemon.controller`) between iterations, and neither dagster.yaml nor the environment can
change it. A backfill launched from the UI so waits up to 30 s before its first run is submitted,
half of the minute a backfill with nothing to do may take (docs/performance.md, "Backfill launch"),
and is marked complete up to 30 s after its last run ends. The backfill loop reads that constant when
it starts, so setting it before the daemon starts is enough; the only other reader is the asset
daemon's interval, which dagster/dagster.yaml pins to 30 s (`auto_materialize.minimum_interval_seconds`).
An iteration with no backfill in progress is three small queries.
"""

from __future__ import annotations

BACKFILL_INTERVAL_SECONDS = 5


def use_backfill_interval(seconds: int = BACKFILL_INTERVAL_SECONDS) -> None:
    """Make the backfill daemon started after this call sleep `seconds` between iterations."""
    from dagster._daemon import controller

    if not isinstance(getattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", None), int):
        raise RuntimeError("Dagster has no DEFAULT_DAEMON_INTERVAL_SECONDS in dagster._daemon.controller")
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = seconds


def main() -> None:
    use_backfill_interval()
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
