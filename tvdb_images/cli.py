"""`tvdb-images`: the command line (demo, Dagster UI, catalog import, serving API, storage dedup, database
migrations)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tvdb_images.catalog_commands import add_lifecycle_commands
from tvdb_images.config import CONTENT_TYPES, ConfigError, load_settings
from tvdb_images.pipeline.causes import FAILURE_CAUSES
from tvdb_images.storage_commands import add_storage_commands
from tvdb_images.wording import plural


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
    demo.add_argument(
        "--origin-port",
        type=int,
        default=None,
        help="port of the local artwork origin (default: the one this data directory used before, else 8765)",
    )
    demo.set_defaults(handler=_demo)

    ui = commands.add_parser(
        "ui", help="open the Dagster UI (dagster dev) on the workspace, creating DAGSTER_HOME if missing"
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("-p", "--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)

    catalog_command = commands.add_parser("catalog", help="catalog commands")
    catalog_command.set_defaults(handler=_print_help(catalog_command))
    catalog = catalog_command.add_subparsers(title="catalog commands")
    load = catalog.add_parser("import", help="import (upsert) a JSON Lines catalog")
    load.add_argument("file", type=Path)
    load.set_defaults(handler=_catalog_import)
    retry = catalog.add_parser("retry-failed", help="give failed artwork a fresh attempt on the next sync")
    retry.add_argument(
        "--cause",
        choices=FAILURE_CAUSES,
        metavar="CAUSE",
        help=_one_of("only artwork that failed so", FAILURE_CAUSES),
    )
    retry.add_argument(
        "--content-type",
        choices=CONTENT_TYPES,
        metavar="TYPE",
        help=_one_of("only artwork of", CONTENT_TYPES),
    )
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

    add_storage_commands(commands)  # storage dedup

    db_command = commands.add_parser("db", help="database commands")
    db_command.set_defaults(handler=_print_help(db_command))
    db = db_command.add_subparsers(title="database commands")
    upgrade = db.add_parser("upgrade", help="apply the catalog migrations (alembic upgrade head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    return parser


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A handler for a command group named without a subcommand: its own help, exit code 2."""

    def handler(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return handler


def _one_of(what: str, values: tuple[str, ...]) -> str:
    return f"{what}: one of {', '.join(values)}"


def _demo(args: argparse.Namespace) -> int:
    import warnings

    from tvdb_images.preflight import check_dependencies

    check_dependencies(load_settings())  # before Dagster is imported, let alone a run started
    import dagster as dg

    # Dagster flags the beta/preview APIs the code location uses; the demo's reader need not see that.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from tvdb_images.demo.run import format_summary, run_demo

    result = run_demo(origin_port=args.origin_port)
    print(format_summary(result))
    return 0 if result.ok else 1


def _ui(args: argparse.Namespace) -> int:
    from tvdb_images.ui import open_ui

    open_ui(load_settings(), host=args.host, port=args.port)
    return 1  # not reached: open_ui replaces this process with `dagster dev` or raises ConfigError


def _catalog_import(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.catalog.importer import import_catalog_file
    from tvdb_images.preflight import check_database

    if not args.file.is_file():
        print(f"tvdb-images: no such file: {args.file}", file=sys.stderr)
        return 2
    settings = load_settings()
    check_database(settings.resolved_database_url)
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
    from tvdb_images.catalog import migrate, queue
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.preflight import check_database

    settings = load_settings()
    check_database(settings.resolved_database_url)
    migrate.upgrade(settings.resolved_database_url)  # a new catalog has nothing to retry, not no tables
    catalog = Catalog(settings.resolved_database_url)
    with catalog.session() as session:
        count = queue.reset_failed(
            session, cause=args.cause, content_type=args.content_type, include_gone=args.include_gone
        )
    print(f"{plural(count, 'artwork')} will be tried again by the next sync")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from serving.server import run
    from tvdb_images.preflight import check_dependencies

    # Fail fast on bad configuration; an object store that is down is the API's to report while it
    # runs (/readyz and the image answers say 503 storage), so a restart of S3 never stops the API.
    check_dependencies(load_settings(), reach_storage=False)
    run(host=args.host, port=args.port, workers=args.workers, loop=args.loop)
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import migrate
    from tvdb_images.preflight import check_database

    settings = load_settings()
    check_database(settings.resolved_database_url)
    migrate.upgrade(settings.resolved_database_url, args.revision)
    print(f"catalog database is at revision {migrate.current_revision(settings.resolved_database_url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
