"""The tables of docs/reliability.md, in order: which recorded section each shows, its columns and
the paragraph above it (the rows come from the tests, see reliability_log.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    title: str  # "" continues the previous table's heading
    section: str
    columns: tuple[str, ...]
    text: str = ""


TABLES = (
    Table(
        "Bad images",
        "bad_input",
        (
            "input",
            "served_as",
            "expected",
            "recorded",
            "objects_stored",
            "pillow_open",
            "pillow_decode",
            "requests",
        ),
        "The corpus's `bad/` files and generated variants, served from a loopback origin under names and "
        "Content-Types that lie, in one partition with mislabelled good images, through the `sync_images` "
        "job on PostgreSQL + SeaweedFS. *Pillow open/decode* count how often the bytes reached "
        "`Image.open` (a header read) and any `load` (a decode); *requests* is after two runs.",
    ),
    Table(
        "Hostile origins",
        "hostile_origin",
        ("case", "recorded", "requests_run_1", "requests_after_3_runs", "attempts"),
        "One partition, three `sync_images` runs, FETCH_TOTAL_TIMEOUT_SECONDS=2, FETCH_MAX_RETRIES=1, "
        "ARTWORK_MAX_ATTEMPTS=2, MAX_IMAGE_FILE_SIZE_MB=1. Retryable causes are tried again by the second "
        "run and then left; nothing is requested by the third.",
    ),
    Table(
        "Run time under hostile origins",
        "hostile_origin_run",
        ("run", "seconds", "bound"),
        "Wall time of the whole Dagster run; the bound is computed from the fetch settings (every attempt "
        "to its deadline plus backoff, per slot of FETCH_CONCURRENCY_PER_HOST) plus 20 s for the rest.",
    ),
    Table(
        "SSRF",
        "ssrf",
        ("case", "url", "recorded"),
        "ALLOWED_SOURCE_HOSTS lists the origin by its IP literal and port, plus the host *name* "
        "`localhost` on the internal port. INTERNAL is a second loopback server that counts TCP "
        "connections.",
    ),
    Table("", "ssrf_target", ("target", "connections")),
    Table(
        "Faults with the real services",
        "fault",
        (
            "fault",
            "faulted_run",
            "after_faulted_run",
            "unrecorded_objects",
            "deleted_by_cleanup_then",
            "after_rerun",
            "unsettled_rows",
            "missing_objects",
            "orphans_removed",
            "refetched",
            "rerendered",
        ),
        "24 artworks in one partition; the fault lands mid-render. Right after the faulted run, the "
        "objects written but never recorded are counted (*unrecorded objects*) and a cleanup with grace 0 "
        "runs (*deleted by cleanup then*: 0, since their artwork is still in work). Then one ordinary "
        "rerun, and: every referenced key checked with HEAD (*missing objects*), artwork left unfinished "
        "(*unsettled rows*), orphan cleanup with grace 0 (*orphans removed*: must equal the unreferenced "
        "objects listed before it), sources recorded as stored before the fault fetched again "
        "(*refetched*) and recorded renditions rewritten (*rerendered*).",
    ),
    Table(
        "Orphan cleanup alongside a sync (hypothesis)",
        "cleanup_property",
        ("backend", "examples", "steps", "cleanups", "objects_deleted", "violations"),
        "Interleavings of sync writes and catalog records (possibly never made: a killed run), URL and "
        "format changes, time passing, and cleanup with a one-hour grace period, with sync steps injected "
        "between cleanup's phases (after listing; after reading references, before its re-check). "
        "Checked at every delete and after every step.",
    ),
    Table(
        "The API under attack (schemathesis)",
        "schemathesis",
        (
            "setup",
            "operations",
            "requests",
            "by_status",
            "server_errors",
            "storage_keys_touched",
            "keys_outside_layout",
        ),
        "Generated requests (positive and negative) for every operation of `create_app()`'s OpenAPI "
        "schema, admin operations both without and with the token, against data from real syncs. "
        "*Storage keys touched* are the object-store calls the requests caused; all must be layout keys.",
    ),
    Table("Admin endpoints", "admin", ("check", "requests", "outcome")),
    Table(
        "The serving API at its edges",
        "serving_edge",
        ("item", "case", "observed"),
        "`tvdb-images serve` as a real uvicorn process over PostgreSQL + SeaweedFS data from a real sync "
        "(the embedded setup where only the HTTP layer matters), spoken to over plain sockets; admin "
        "launches against a real dagster-webserver. *item* is the point of the hardening issue each "
        "case checks: 1 start under CPU pressure, 2 idempotent launches, 5 rate limits, 6 one URL per "
        "image, 7 behind a proxy and in a browser, 8 what a request may cost.",
    ),
    Table(
        "The catalog's life after its first sync",
        "catalog_life",
        ("case", "setup", "observed", "missing_objects", "unreferenced_objects"),
        "A new file behind an unchanged URL (revalidation with conditional requests), a source that "
        "changes to a refused file under each STALE_IMAGE_POLICY (checked through the API), a forced "
        "refresh, and removal and pruning followed by orphan cleanup. *Missing objects*: catalog "
        "references with no object; *unreferenced objects*: objects of the partition no row references "
        "(withdrawn images' objects wait there for orphan cleanup).",
    ),
    Table(
        "Objects lost from storage",
        "lost_object",
        ("case", "found_missing", "repaired_by", "missing_after", "listed_objects", "listing_ms"),
        "Three synced artworks on PostgreSQL + SeaweedFS, objects deleted by hand; *found missing* is "
        "what the comparison `catalog_objects_exist` makes (one listing of the partitions' prefixes "
        "against the catalog) reported for that artwork; it is then repaired by the next ordinary sync "
        "of its scope, with no operator step in between.",
    ),
    Table(
        "HEAD against GET",
        "head_vs_get",
        ("server", "case", "get", "head", "headers_equal", "head_body_bytes"),
        "A real `tvdb-images serve` per setup: renditions read whole into the byte cache (*cached*), "
        "streamed (SERVING_BYTE_CACHE_MB=0), and S3 that refuses connections (*storage_down*). "
        "*Headers equal* compares every header but `Date` and the request id (and, for errors, the "
        "length of a body that names the request id).",
    ),
)
