"""The artwork metadata's `placeholders`, over data written by real pipeline runs (both setups)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.app import create_app
from tvdb_images.catalog.models import Artwork
from tvdb_images_tests.support.serving_data import AVIF_ARTWORK, MIRRORED, PENDING, PRIMARY_POSTER, ServedData

GONE = 5004  # series 101's best poster, whose source answered 404


def test_metadata_returns_the_placeholders_the_render_stored(served: ServedData) -> None:
    with TestClient(create_app(served.settings, catalog=served.catalog, store=served.store)) as client:
        bodies = {
            artwork_id: client.get(f"/api/v1/images/artwork/{artwork_id}").json()
            for artwork_id in (PRIMARY_POSTER, AVIF_ARTWORK, MIRRORED[2], PENDING[2], GONE)
        }
    with served.catalog.session() as session:
        for artwork_id in (PRIMARY_POSTER, AVIF_ARTWORK):
            row = session.get(Artwork, artwork_id)
            expected = {
                "thumbhash": row.thumbhash,
                "blurhash": row.blurhash,
                "dominant_color": row.dominant_color,
            }
            assert all(expected.values())
            assert bodies[artwork_id]["placeholders"] == expected
    # Mirrored unchanged (nothing decoded), not stored yet, or never stored: no placeholders.
    for artwork_id in (MIRRORED[2], PENDING[2], GONE):
        assert bodies[artwork_id]["placeholders"] is None, artwork_id
