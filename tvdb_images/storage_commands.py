"""`tvdb-images storage dedup`: fold artwork already stored twice from identical sources into one copy.
The logic lives in tvdb_images.pipeline.fold; this module only parses arguments and prints counts."""

from __future__ import annotations

import argparse
from typing import Any

from tvdb_images.config import load_settings


def add_storage_commands(commands: Any) -> None:
    """Add the `storage` command group and its `dedup` command to the top-level subparsers."""
    storage_command = commands.add_parser("storage", help="object storage commands")
    storage = storage_command.add_subparsers(title="storage commands")
    storage_command.set_defaults(handler=lambda _args: (storage_command.print_help(), 2)[1])
    dedup = storage.add_parser(
        "dedup",
        help="share one stored copy among artwork with identical sources and render settings",
        description=(
            "Repoint each group of processed artwork with identical source bytes and render signature"
            " at one member's renditions. The others' objects are left to orphan cleanup, which deletes"
            " them once no row names them (after its grace period)."
        ),
    )
    dedup.add_argument("--dry-run", action="store_true", help="count what would be folded; change nothing")
    dedup.set_defaults(handler=_dedup)


def _dedup(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.pipeline.fold import fold_duplicates
    from tvdb_images.preflight import check_dependencies
    from tvdb_images.storage import store_from_settings

    settings = load_settings()
    check_dependencies(settings)
    migrate.upgrade(settings.resolved_database_url)
    report = fold_duplicates(
        Catalog(settings.resolved_database_url), store_from_settings(settings), dry_run=args.dry_run
    )
    verb = "would fold" if args.dry_run else "folded"
    print(
        f"{report.groups} groups of identical artwork: {verb} {report.folded}, skipped {report.skipped};"
        f" {report.objects_released} objects ({report.bytes_released} bytes) left to orphan cleanup"
    )
    for example in report.examples:
        print(f"  {example}")
    return 0
