"""Asset kinds that name the backends this deployment really uses.

Assets declare the role a backend plays (`catalog`, `object_storage`); when the code location loads,
`with_backend_kinds` replaces each role by the configured backend's name, so the UI's badges say
`s3` only where STORAGE_BACKEND=s3 and `postgres` or `sqlite` after the catalog's database.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from tvdb_images.config import Settings

CATALOG_KIND = "catalog"
OBJECT_STORAGE_KIND = "object_storage"


def backend_kinds(settings: Settings) -> dict[str, str]:
    """Role -> the kind Dagster shows for it (names the UI has icons for)."""
    database = settings.resolved_database_url.split(":", 1)[0].split("+", 1)[0]
    return {
        CATALOG_KIND: "postgres" if database.startswith("postgres") else database,
        OBJECT_STORAGE_KIND: "s3" if settings.storage_backend == "s3" else "file",
    }


def with_backend_kinds(
    assets: Sequence[dg.AssetsDefinition], settings: Settings
) -> list[dg.AssetsDefinition]:
    kinds = backend_kinds(settings)

    def resolve(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(kinds={kinds.get(kind, kind) for kind in spec.kinds})

    return [asset.map_asset_specs(resolve) for asset in assets]
