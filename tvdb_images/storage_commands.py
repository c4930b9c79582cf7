"""`tvdb-images storage dedup`: fold artwork already stored twice from identical sources into one copy;
`tvdb-images storage near-duplicates`: list near-duplicate clusters, and with `--fold` (which needs
DEDUP_NEAR_DUPLICATES=true) serve each from its best member. The logic lives in tvdb_images.pipeline
(fold, near_fold) and tvdb_images.catalog.near_duplicates; this module parses arguments and prints."""

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
    near = storage.add_parser(
        "near-duplicates",
        help="list clusters of near-identical artwork (same picture, other size or quality)",
        description=(
            "Hash artwork rendered before perceptual hashes existed, then list the clusters of"
            " near-identical artwork with their bytes and best member. --fold serves each cluster from"
            " its best member's renditions (needs DEDUP_NEAR_DUPLICATES=true)."
        ),
    )
    near.add_argument("--fold", action="store_true", help="serve each cluster from its best member")
    near.add_argument("--dry-run", action="store_true", help="with --fold: count only; change nothing")
    near.set_defaults(handler=_near_duplicates)


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


def _near_duplicates(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.catalog.near_duplicates import find_clusters
    from tvdb_images.pipeline.near_fold import fold_near_duplicates
    from tvdb_images.pipeline.perceptual_backfill import backfill_perceptual_hashes
    from tvdb_images.preflight import check_dependencies
    from tvdb_images.storage import store_from_settings

    settings = load_settings()
    if args.fold and not settings.dedup_near_duplicates:
        print("--fold needs DEDUP_NEAR_DUPLICATES=true (otherwise the next dedup_report undoes it)")
        return 2
    check_dependencies(settings)
    migrate.upgrade(settings.resolved_database_url)
    catalog, store = Catalog(settings.resolved_database_url), store_from_settings(settings)
    hashed = backfill_perceptual_hashes(catalog, store).hashed
    with catalog.session() as session:
        clusters = find_clusters(session)
    reclaimable = sum(c.bytes_reclaimable for c in clusters)
    print(f"{len(clusters)} near-duplicate clusters, {reclaimable} bytes reclaimable ({hashed} newly hashed)")
    for cluster in clusters[:20]:
        others = ", ".join(str(m.artwork_id) for m in cluster.members[1:])
        print(f"  best {cluster.best.artwork_id} ({cluster.best.width}x{cluster.best.height}): {others}")
    if args.fold:
        report = fold_near_duplicates(catalog, store, dry_run=args.dry_run, clusters=clusters)
        verb = "would fold" if args.dry_run else "folded"
        print(
            f"{verb} {report.folded}, skipped {report.skipped};"
            f" {report.bytes_released} bytes left to orphan cleanup"
        )
    return 0
