"""Every `failure_cause` the pipeline records, for the CLI's choices and the demo's summary."""

from __future__ import annotations

from tvdb_images.fetch.errors import CAUSES as FETCH_CAUSES
from tvdb_images.imaging.errors import CAUSES as IMAGE_CAUSES

# Recorded by the download and render stages themselves (pipeline/download.py, pipeline/render.py).
STORAGE_ERROR = "storage_error"
SOURCE_MISSING = "source_missing"

FAILURE_CAUSES: tuple[str, ...] = tuple(sorted(FETCH_CAUSES | IMAGE_CAUSES | {STORAGE_ERROR, SOURCE_MISSING}))
