"""`tvdb-images`: the command line (demo, catalog import, serving API, database migrations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tvdb_images.catalog_commands import add_lifecycle_commands
from tvdb_images.config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"tvdb-images: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tvdb-images",
        description="Keep a local, optimized copy of a TVDB catalog's artwork.",
    )
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser("demo", help="run the full sync on a demo catalog served from a local origin")
    demo.add_argument("--origin-port", type=int, default=8765, help="port of the local artwork origin")
    demo.set_defaults(handler=_demo)

    catalog = commands.add_parser("catalog", help="catalog commands").add_subparsers(title="catalog commands")
    load = catalog.add_parser("import", help="import (upsert) a JSON Lines catalog")
    load.add_argument("file", type=Path)
    load.set_defaults(handler=_catalog_import)
    retry = catalog.add_parser("retry-failed", help="give failed artwork a fresh attempt on the next sync")
    retry.add_argument("--cause", help="only artwork that failed with this cause (e.g. timeout)")
    retry.add_argument("--content-type", help="only artwork of this content type")
    retry.add_argument("--include-gone", action="store_true", help="also retry sources that answered 404/410")
    retry.set_defaults(handler=_catalog_retry)
    add_lifecycle_commands(catalog)  # refresh, remove, stale, import --prune

    serve = commands.add_parser("serve", help="run the serving API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop; auto: asyncio with one worker, uvloop with several (docs/performance.md)",
    )
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database commands").add_subparsers(title="database commands")
    upgrade = db.add_parser("upgrade", help="apply the catalog migrations (alembic upgrade head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    return parser


def _demo(args: argparse.Namespace) -> int:
    import warnings

    import dagster as dg

    # Dagster flags the beta/preview APIs the code location uses; the demo's reader need not see that.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from tvdb_images.demo.run import format_summary, run_demo

    result = run_demo(origin_port=args.origin_port)
    print(format_summary(result))
    return 0 if result.ok else 1


def _catalog_import(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.catalog.importer import import_catalog_file

    if not args.file.is_file():
        print(f"tvdb-images: no such file: {args.file}", file=sys.stderr)
        return 2
    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url)
    catalog = Catalog(settings.resolved_database_url)
    report = import_catalog_file(catalog, args.file)
    print(f"imported {report.summary()}")
    for error in report.errors[:50]:
        print(f"  {error}", file=sys.stderr)
    if len(report.errors) > 50:
        print(f"  ... and {len(report.errors) - 50} more", file=sys.stderr)
    return 1 if report.errors else 0


def _catalog_retry(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import work
    from tvdb_images.catalog.db import Catalog

    settings = load_settings()
    catalog = Catalog(settings.resolved_database_url)
    with catalog.session() as session:
        count = work.reset_failed(
            session, cause=args.cause, content_type=args.content_type, include_gone=args.include_gone
        )
    print(f"{count} artworks will be tried again by the next sync")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from serving.server import run

    load_settings()  # fail fast with a readable message on bad configuration
    run(host=args.host, port=args.port, workers=args.workers, loop=args.loop)
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate

    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url, args.revision)
    print(f"catalog database is at revision {migrate.current_revision(settings.resolved_database_url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
