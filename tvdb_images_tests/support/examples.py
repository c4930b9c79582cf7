"""How many examples the property tests generate. A plain run (CI, a developer) generates enough for
every case the tests' assertions require to come up; a soak (TVDB_IMAGES_TEST_PROFILE=soak, which the
reliability report sets, so docs/reliability.md shows the soak's counts) generates the larger number.
"""

from __future__ import annotations

import os

PROFILE_ENV = "TVDB_IMAGES_TEST_PROFILE"
SOAK = "soak"


def soaking() -> bool:
    return os.environ.get(PROFILE_ENV, "").strip().lower() == SOAK


def examples(default: int, soak: int) -> int:
    """`soak` examples in a soak, `default` otherwise."""
    return soak if soaking() else default
