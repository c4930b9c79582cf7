"""Render signatures with a fixed meaning, read by the pipeline, the catalog statistics and the API
(a module of its own so that reading the catalog does not import the pipeline's imaging and fetching)."""

# Render signature of artwork stored as-is (ENABLE_IMAGE_OPTIMIZATION=false): one unchanged source.
MIRROR_SIGNATURE = "mirror"
