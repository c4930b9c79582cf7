"""Every `# type: ignore` in the type-checked packages names its error code and says on its line why
(docs/architecture.md, "Types"), so a silenced error is a decision a reader can check, not a habit."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("tvdb_images", "serving")  # [tool.mypy] packages in pyproject.toml
JUSTIFIED = re.compile(r"^# type: ignore\[[a-z-]+(, *[a-z-]+)*\]\s+#\s*\S")


def _ignores() -> list[tuple[str, int, str]]:
    found = []
    for package in CHECKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            for token in tokens:
                if token.type == tokenize.COMMENT and "type: ignore" in token.string:
                    found.append((str(path.relative_to(ROOT)), token.start[0], token.string))
    return found


def test_the_checked_packages_have_type_ignores_to_look_at() -> None:
    assert len(_ignores()) > 0  # the scan reads comments where they are


def test_every_type_ignore_names_its_code_and_says_why() -> None:
    bare = [f"{path}:{line}: {comment}" for path, line, comment in _ignores() if not JUSTIFIED.match(comment)]
    assert not bare, "\n".join(bare)
