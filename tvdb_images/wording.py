"""Counts in messages read as English: "1 artwork", "2 artworks"."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`count` and the noun, singular for exactly one."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"
