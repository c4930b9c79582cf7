"""The import direction of docs/architecture.md ("Layers"), read from the source: the core and the
stages know nothing of Dagster or FastAPI, the serving API nothing of Dagster or Pillow, and the
bottom modules nothing of the project, so a wrong-way import fails here rather than in review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CORE = ("imaging", "fetch", "storage", "catalog", "pipeline", "partition_keys.py", "config.py")
BOTTOM = ("registry", "retrying", "wording")
UPPER_LAYERS = ("tvdb_images.defs", "tvdb_images.definitions", "tvdb_images.deployment", "tvdb_images.cli")
UPPER_LAYERS += ("tvdb_images.demo", "tvdb_images.ui", "tvdb_images.catalog_commands", "serving")
FRAMEWORKS = ("dagster", "dagster_aws", "dagster_postgres", "dagster_graphql", "fastapi", "starlette")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, at any depth (a lazy import inside a function counts too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module or ""]).rstrip(".")
            elif node.module:
                yield node.lineno, node.module


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in _imports(path)
        if _within(name, forbidden)
    ]


def _files(*parts: str) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        target = ROOT / part
        found += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    assert found, parts
    return found


@pytest.mark.parametrize("package", CORE)
def test_core_imports_neither_frameworks_nor_upper_layers(package: str) -> None:
    assert _violations(_files(f"tvdb_images/{package}".removesuffix(".py")), FRAMEWORKS + UPPER_LAYERS) == []


def test_settings_import_only_the_registry() -> None:
    imported = [name for _, name in _imports(ROOT / "tvdb_images" / "config.py")]
    own = [name for name in imported if _within(name, ("tvdb_images",))]
    assert set(own) <= {"tvdb_images.registry"}


@pytest.mark.parametrize("package", ("imaging", "fetch", "storage", "catalog"))
def test_core_below_the_stages_does_not_import_them(package: str) -> None:
    assert _violations(_files(f"tvdb_images/{package}"), ("tvdb_images.pipeline",)) == []


@pytest.mark.parametrize("module", BOTTOM)
def test_bottom_modules_import_nothing_of_the_project_above_them(module: str) -> None:
    above = ("tvdb_images.imaging", "tvdb_images.fetch", "tvdb_images.storage", "tvdb_images.catalog")
    above += ("tvdb_images.pipeline", "tvdb_images.config", *UPPER_LAYERS)
    assert _violations(_files(f"tvdb_images/{module}"), FRAMEWORKS + above) == []


def test_serving_imports_neither_dagster_nor_pillow() -> None:
    forbidden = ("dagster", "dagster_graphql", "PIL", "tvdb_images.defs", "tvdb_images.definitions")
    forbidden += ("tvdb_images.deployment", "tvdb_images.imaging")
    assert _violations(_files("serving"), forbidden) == []


def test_the_check_reads_lazy_and_relative_imports() -> None:
    """The checker itself: a function-level import and a relative one are both seen."""
    sample = ROOT / "tvdb_images" / "catalog" / "db.py"
    names = {name for _, name in _imports(sample)}
    assert names, "catalog/db.py imports something"
    probe = ast.parse("def f():\n    import dagster\nfrom .x import y\n")
    assert sum(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(probe)) == 2
