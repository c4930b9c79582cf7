"""`tvdb-images catalog refresh | remove | stale | import --prune`: the catalog's life after the first
import, without SQL. The logic lives in tvdb_images.catalog (refresh, removal, prune, stale); this
module only parses arguments and prints counts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tvdb_images.catalog.wording import counted
from tvdb_images.config import CONTENT_TYPES, load_settings

Handler = Callable[[argparse.Namespace], int]

_ITEM = "CONTENT_TYPE/ID"
EXAMPLES = 20
_ONE_OR_MORE = "repeat for more"


def add_lifecycle_commands(catalog: Any) -> None:
    """Add `refresh`, `remove` and `stale` to the `catalog` subparsers, and `--prune`/`--dry-run` to
    `import`."""
    from tvdb_images.catalog.refresh import STATUSES

    refresh = catalog.add_parser(
        "refresh",
        help="mark artwork for re-download (and re-render) by the next sync",
        description=(
            "Mark artwork for re-download by the next sync; it stays served until the new download"
            " replaces it. Ids and items add up; --content-type, --status and --cause narrow them (or"
            " the whole catalog). Name at least one filter, or --all."
        ),
    )
    refresh.add_argument(
        "--artwork-id", type=int, action="append", default=[], metavar="ID", help=_ONE_OR_MORE
    )
    refresh.add_argument(
        "--item", action="append", default=[], metavar=_ITEM, help=f"e.g. series/81189; {_ONE_OR_MORE}"
    )
    refresh.add_argument("--content-type", choices=CONTENT_TYPES, help="only artwork of this content type")
    refresh.add_argument(
        "--status",
        action="append",
        default=[],
        choices=STATUSES,
        help=f"only artwork in this status; {_ONE_OR_MORE}",
    )
    refresh.add_argument(
        "--cause",
        action="append",
        default=[],
        help=f"only artwork that failed with this cause (e.g. timeout); {_ONE_OR_MORE}",
    )
    refresh.add_argument("--all", action="store_true", help="every artwork in the catalog")
    refresh.add_argument("--dry-run", action="store_true", help="count what would be marked; change nothing")
    refresh.set_defaults(handler=_refresh)

    remove = catalog.add_parser(
        "remove",
        help="delete items or artworks from the catalog (objects are left to orphan cleanup)",
        description=(
            "Delete content items (with all their artwork) and single artworks from the catalog, their"
            " rendition rows with them. Stored objects stay until orphan cleanup removes them."
        ),
    )
    remove.add_argument(
        "--item", action="append", default=[], metavar=_ITEM, help=f"a whole item; {_ONE_OR_MORE}"
    )
    remove.add_argument(
        "--artwork-id", type=int, action="append", default=[], metavar="ID", help=_ONE_OR_MORE
    )
    remove.add_argument("--dry-run", action="store_true", help="show what would be removed; change nothing")
    remove.set_defaults(handler=_remove)

    stale = catalog.add_parser(
        "stale",
        help="list stale artwork (last good image of a refused source); --withdraw stops serving it",
        description=(
            "Stale artwork is served as its last good image after its source changed and was refused"
            " (STALE_IMAGE_POLICY=serve); --withdraw is the operator's decision to stop serving it."
        ),
    )
    stale.add_argument("--content-type", choices=CONTENT_TYPES, help="only artwork of this content type")
    stale.add_argument(
        "--artwork-id", type=int, action="append", metavar="ID", help=f"only this artwork; {_ONE_OR_MORE}"
    )
    stale.add_argument("--withdraw", action="store_true", help="stop serving these images (objects: cleanup)")
    stale.add_argument("--dry-run", action="store_true", help="with --withdraw: count, change nothing")
    stale.add_argument("--limit", type=int, default=50, help="how many to list (default 50)")
    stale.set_defaults(handler=_stale)

    load = catalog.choices["import"]
    load.add_argument(
        "--prune",
        action="store_true",
        help="the file is a full export: remove the items and artworks it does not contain",
    )
    load.add_argument("--dry-run", action="store_true", help="with --prune: show what would be removed")
    plain_import: Handler = load.get_default("handler")
    load.set_defaults(handler=lambda args: _import(args, plain_import))


def _catalog():
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog

    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url)
    return Catalog(settings.resolved_database_url)


def _refresh(args: argparse.Namespace) -> int:
    from tvdb_images.catalog.refresh import SelectionError, refresh_artwork, selection_from

    try:
        selection = selection_from(
            artwork_ids=args.artwork_id,
            items=args.item,
            content_type=args.content_type,
            statuses=args.status,
            causes=args.cause,
            everything=args.all,
        )
        with _catalog().session() as session:
            report = refresh_artwork(session, selection, dry_run=args.dry_run)
    except SelectionError as exc:
        print(f"tvdb-images: {exc}", file=sys.stderr)
        return 2
    print(("dry run: " if args.dry_run else "") + report.summary())
    if report.examples:
        more = report.matched - report.already_pending > len(report.examples)
        print(f"  artwork ids: {', '.join(map(str, report.examples))}{' ...' if more else ''}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from tvdb_images.catalog.refresh import SelectionError, parse_items
    from tvdb_images.catalog.removal import Removal, remove

    try:
        removal = Removal(items=frozenset(parse_items(args.item)), artwork_ids=frozenset(args.artwork_id))
    except SelectionError as exc:
        print(f"tvdb-images: {exc}", file=sys.stderr)
        return 2
    if removal.is_empty:
        print("tvdb-images: name what to remove: --item CONTENT_TYPE/ID or --artwork-id ID", file=sys.stderr)
        return 2
    with _catalog().session() as session:
        report = remove(session, removal, dry_run=args.dry_run)
    _print_removal(report)
    return 0


def _import(args: argparse.Namespace, plain_import: Handler) -> int:
    if not args.prune:
        if args.dry_run:
            print("tvdb-images: --dry-run applies to --prune only", file=sys.stderr)
            return 2
        return plain_import(args)
    from tvdb_images.catalog.importer import import_catalog_file
    from tvdb_images.catalog.prune import PruneRefused, absent_from, read_export
    from tvdb_images.catalog.removal import remove

    path: Path = args.file
    if not path.is_file():
        print(f"tvdb-images: no such file: {path}", file=sys.stderr)
        return 2
    catalog = _catalog()
    import_errors = 0
    if args.dry_run:
        print("dry run: nothing imported")
    else:
        report = import_catalog_file(catalog, path)
        print(f"imported {report.summary()}")
        for error in report.errors[:50]:
            print(f"  {error}", file=sys.stderr)
        if len(report.errors) > 50:
            print(f"  ... and {len(report.errors) - 50} more", file=sys.stderr)
        import_errors = len(report.errors)
    contents = read_export(path)
    try:
        with catalog.session() as session:
            removal = absent_from(session, contents, import_errors=import_errors)
            _print_removal(remove(session, removal, dry_run=args.dry_run))
    except PruneRefused as exc:
        print(f"tvdb-images: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_removal(report: Any) -> None:
    print(("dry run: " if report.dry_run else "") + report.summary())
    for example in report.examples:
        print(f"  {example}")
    if report.not_found:
        print(f"  not in the catalog: {', '.join(report.not_found[:EXAMPLES])}")


def _stale(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import stale
    from tvdb_images.catalog.scope import Scope

    if args.dry_run and not args.withdraw:
        print("tvdb-images: --dry-run applies to --withdraw only", file=sys.stderr)
        return 2
    if args.limit < 0:
        print("tvdb-images: --limit must be 0 or more", file=sys.stderr)
        return 2
    settings = load_settings()
    catalog = _catalog()
    scope = Scope(
        content_type=args.content_type,
        artwork_ids=tuple(args.artwork_id) if args.artwork_id else None,
    )
    try:
        with catalog.session() as session:
            total = stale.count_stale(session, scope)
            for artwork in stale.list_stale(session, scope, limit=args.limit):
                print(
                    f"{artwork.artwork_id}\t{artwork.content_type}/{artwork.content_id}\t{artwork.image_type}"
                    f"\t{artwork.status}\t{artwork.failure_cause or '-'}\t{artwork.stale_since.isoformat()}"
                    f"\t{artwork.source_url}"
                )
            policy = f"policy: STALE_IMAGE_POLICY={settings.stale_image_policy}"
            print(f"{counted(total, 'stale artwork')} ({policy})")
            if args.withdraw:
                count = stale.withdraw_stale(session, scope, dry_run=args.dry_run)
                if args.dry_run:
                    print(f"dry run: would withdraw {counted(count, 'image')}")
                else:
                    print(f"withdrew {counted(count, 'image')}; orphan cleanup removes their objects")
    finally:
        catalog.dispose()
    return 0
