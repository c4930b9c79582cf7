"""Keep a sync's memory flat: cap glibc's malloc arenas before the stage thread pools start.

glibc gives each thread that allocates its own arena (up to 8 per core), and large image buffers freed
in one arena are not reused by another, so a process with 16 download threads and a few render
threads holds ~500 MB at its peak. Two arenas keep it near 340 MB at the same speed (measured by
`python -m benchmarks.scale`). Setting MALLOC_ARENA_MAX in the environment does the same for a whole
deployment; this call makes every process that runs the pipeline behave so without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
_applied = False


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap malloc arenas once per process (glibc only; MALLOC_ARENA_MAX in the environment wins)."""
    global _applied
    if _applied or os.environ.get("MALLOC_ARENA_MAX"):
        return _applied
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    _applied = bool(mallopt(_M_ARENA_MAX, arenas))
    if not _applied:
        log.debug("mallopt(M_ARENA_MAX) refused; malloc arenas stay at glibc's default")
    return _applied
