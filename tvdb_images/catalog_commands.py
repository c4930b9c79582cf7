"""`tvdb-images catalog refresh | remove | import --prune`: the catalog's life after the first import,
without SQL. The logic lives in tvdb_images.catalog (refresh, removal, prune); this module only parses
arguments and prints counts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tvdb_images.config import load_settings

Handler = Callable[[argparse.Namespace], int]


def add_lifecycle_commands(catalog: Any) -> None:
    """Add `refresh` and `remove` to the `catalog` subparsers, and `--prune`/`--dry-run` to `import`."""
    from tvdb_images.catalog.refresh import STATUSES

    refresh = catalog.add_parser(
        "refresh",
        help="mark artwork for re-download (and re-render) by the next sync",
        description="Filters combine: ids and items add up; --content-type, --status and --cause narrow.",
    )
    refresh.add_argument("--artwork-id", type=int, action="append", default=[], help="repeatable")
    refresh.add_argument("--item", action="append", default=[], help="CONTENT_TYPE/ID, e.g. series/81189")
    refresh.add_argument("--content-type", help="only artwork of this content type")
    refresh.add_argument("--status", action="append", default=[], choices=STATUSES, help="repeatable")
    refresh.add_argument("--cause", action="append", default=[], help="failure cause, e.g. timeout")
    refresh.add_argument("--all", action="store_true", help="every artwork in the catalog")
    refresh.add_argument("--dry-run", action="store_true", help="count what would be marked; change nothing")
    refresh.set_defaults(handler=_refresh)

    remove = catalog.add_parser(
        "remove",
        help="delete items or artworks from the catalog (objects are left to orphan cleanup)",
    )
    remove.add_argument("--item", action="append", default=[], help="CONTENT_TYPE/ID; repeatable")
    remove.add_argument("--artwork-id", type=int, action="append", default=[], help="repeatable")
    remove.add_argument("--dry-run", action="store_true", help="show what would be removed; change nothing")
    remove.set_defaults(handler=_remove)

    load = catalog.choices["import"]
    load.add_argument(
        "--prune", action="store_true", help="the file is a full export: remove what it does not contain"
    )
    load.add_argument("--dry-run", action="store_true", help="with --prune: show what would be removed")
    plain_import: Handler = load.get_default("handler")
    load.set_defaults(handler=lambda args: _import(args, plain_import))


def _catalog():  # type: ignore[no-untyped-def]
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog

    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url)
    return Catalog(settings.resolved_database_url)


def _refresh(args: argparse.Namespace) -> int:
    from tvdb_images.catalog.refresh import ArtworkSelection, SelectionError, parse_items, refresh_artwork

    try:
        selection = ArtworkSelection(
            artwork_ids=tuple(args.artwork_id),
            items=parse_items(args.item),
            content_type=args.content_type,
            statuses=tuple(args.status),
            causes=tuple(args.cause),
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
