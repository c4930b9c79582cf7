"""`tvdb-images catalog stale`: list artwork served as its last good image after its source changed and
was refused (STALE_IMAGE_POLICY=serve), and withdraw those images when the operator decides so."""

from __future__ import annotations

import argparse
from typing import Any

from tvdb_images.config import CONTENT_TYPES, load_settings


def add_stale_command(catalog_commands: Any) -> None:
    stale = catalog_commands.add_parser(
        "stale", help="list stale artwork (last good image of a refused source); --withdraw stops serving it"
    )
    stale.add_argument("--content-type", choices=CONTENT_TYPES, help="only artwork of this content type")
    stale.add_argument("--artwork-id", type=int, action="append", help="only this artwork (repeatable)")
    stale.add_argument("--withdraw", action="store_true", help="stop serving these images (objects: cleanup)")
    stale.add_argument("--dry-run", action="store_true", help="with --withdraw: count, change nothing")
    stale.add_argument("--limit", type=int, default=50, help="how many to list (default 50)")
    stale.set_defaults(handler=_stale)


def _stale(args: argparse.Namespace) -> int:
    from tvdb_images.catalog import stale
    from tvdb_images.catalog.db import Catalog
    from tvdb_images.catalog.work import Scope

    settings = load_settings()
    catalog = Catalog(settings.resolved_database_url)
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
            print(f"{total} stale artworks (policy: STALE_IMAGE_POLICY={settings.stale_image_policy})")
            if args.withdraw:
                count = stale.withdraw_stale(session, scope, dry_run=args.dry_run)
                verb = (
                    "would be withdrawn"
                    if args.dry_run
                    else "withdrawn; orphan cleanup removes their objects"
                )
                print(f"{count} images {verb}")
    finally:
        catalog.dispose()
    return 0
