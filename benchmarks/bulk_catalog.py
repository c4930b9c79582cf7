"""Fill a PostgreSQL catalog with many synthetic artwork rows, inside the server (INSERT ... SELECT).

A million rows go in within a minute or two because PostgreSQL generates them itself from
`generate_series`; the shard and storage path are computed with the same sha256 layout the
pipeline uses, so the rows spread over the 1,280 partitions exactly as real ones would. Processed
rows get their five rendition rows, signed with the current settings, so nothing about them looks
stale or incomplete to discovery and the checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

ARTWORK_SQL = """
INSERT INTO artwork (
    id, content_type, content_id, image_type, source_url, language, score, width, height, shard,
    storage_path, status, attempts, failure_retryable, failure_cause, source_checksum, source_format,
    source_width, source_height, render_signature, processed_at, file_size, created_at, updated_at)
SELECT g, ct, cid, 'poster', 'https://artworks.thetvdb.com/banners/posters/' || g || '.jpg', 'eng', 10,
       680, 1000, substr(h, 1, 2),
       ct || '/' || substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || cid || '/poster',
       status, CASE WHEN status = 'pending' THEN 0 ELSE 1 END, false,
       CASE WHEN status IN ('failed', 'gone') THEN 'http_404' END,
       CASE WHEN status = 'processed' THEN md5(g::text) || md5(cid::text) END,
       CASE WHEN status = 'processed' THEN 'jpeg' END,
       680, 1000,
       CASE WHEN status = 'processed' THEN %(signature)s END,
       CASE WHEN status = 'processed' THEN now() END, 100000, now(), now()
FROM (
    SELECT g, (ARRAY['series', 'movies', 'episodes', 'seasons', 'people'])[1 + g %% 5] AS ct,
           %(content_base)s + g AS cid,
           CASE WHEN g %% 100 < %(pending_percent)s THEN 'pending'
                WHEN g %% 100 < %(pending_percent)s + 1 THEN 'failed'
                WHEN g %% 100 < %(pending_percent)s + 2 THEN 'gone'
                ELSE 'processed' END AS status
    FROM generate_series(%(first)s, %(last)s) AS g
) AS rows, LATERAL (SELECT encode(sha256(convert_to(ct || '/' || cid, 'UTF8')), 'hex') AS h) AS hashed
"""

RENDITIONS_SQL = """
INSERT INTO artwork_renditions (
    artwork_id, size, format, storage_key, url, width, height, bytes, content_type, checksum,
    source_checksum, render_signature, created_at)
SELECT a.id, s.size, 'webp', a.storage_path || '/' || s.size || '.webp',
       'https://cdn.example.com/' || a.storage_path || '/' || s.size || '.webp', 100, 100, 10000,
       'image/webp', a.source_checksum, a.source_checksum, a.render_signature, now()
FROM artwork AS a
CROSS JOIN (VALUES ('original'), ('large'), ('medium'), ('small'), ('thumbnail')) AS s(size)
WHERE a.status = 'processed' AND a.id BETWEEN %(first)s AND %(last)s
"""


@dataclass(frozen=True)
class BulkRows:
    artworks: int
    renditions: int
    seconds: float


def load(
    database_url: str,
    artworks: int,
    *,
    signature: str,
    pending_percent: int = 0,
    first_id: int = 10_000_000,
    batch: int = 250_000,
) -> BulkRows:
    """Insert `artworks` rows (ids from `first_id`), `pending_percent` of them pending, 1% failed for
    good, 1% gone and the rest processed with renditions; then ANALYZE, as after any bulk load."""
    import time

    started = time.perf_counter()
    renditions = 0
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        for start in range(first_id, first_id + artworks, batch):
            last = min(start + batch, first_id + artworks) - 1
            params = {
                "first": start,
                "last": last,
                "signature": signature,
                "content_base": 50_000_000,
                "pending_percent": pending_percent,
            }
            connection.execute(ARTWORK_SQL, params)
            renditions += connection.execute(RENDITIONS_SQL, params).rowcount
            connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE artwork")
        connection.execute("ANALYZE artwork_renditions")
    return BulkRows(artworks, renditions, time.perf_counter() - started)
