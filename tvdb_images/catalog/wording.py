"""Counts as operators read them: "1 artwork", "2 artworks"."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"
