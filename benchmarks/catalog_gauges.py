"""What the catalog gauges of GET /metrics cost on a large PostgreSQL catalog.

    python -m benchmarks.catalog_gauges [--artworks 1000000] [--repeats 5]

Fills a fresh catalog with `--artworks` synthetic rows (`bulk_catalog`: 2% pending, 1% failed, 1% gone,
the rest processed), then times `serving.catalog_gauges.count_catalog` (the one grouped query each
worker runs at most every CATALOG_METRICS_SECONDS), a scrape of the cached gauges, and shows the plan.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.bulk_catalog import load as bulk_load
from benchmarks.common import machine, median, write_results
from benchmarks.stack import running_stack
from serving.catalog_gauges import COUNTS_SQL, CatalogGauges, count_catalog
from tvdb_images.pipeline.settings import PipelineSettings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    context = machine()
    with running_stack("bench_catalog_gauges", with_origin=False) as stack:
        signature = PipelineSettings.from_settings(stack.settings()).signature
        bulk = bulk_load(stack.database_url, args.artworks, signature=signature, pending_percent=2)
        print(f"loaded {args.artworks:,} artworks in {bulk.seconds:.0f} s", flush=True)
        engine = stack.catalog.engine
        count_catalog(engine)  # warm the buffer cache, as a running server's would be
        query = [count_catalog(engine).seconds for _ in range(args.repeats)]
        gauges = CatalogGauges(engine, ttl=3600)
        list(gauges.collect())
        started = time.perf_counter()
        for _ in range(100):
            list(gauges.collect())
        cached_ms = (time.perf_counter() - started) * 1000 / 100
        with engine.connect() as connection:
            plan = [row[0] for row in connection.exec_driver_sql("EXPLAIN (ANALYZE) " + str(COUNTS_SQL))]
        counts = count_catalog(engine)
    result: dict[str, Any] = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": args.artworks,
        "query_seconds": query,
        "query_seconds_median": median(query),
        "cached_scrape_ms": cached_ms,
        "plan": plan,
        "backlog": {f"{status}/{cause}": n for (status, cause), n in counts.backlog.items()},
        "processed": counts.processed,
    }
    print(f"grouped query: median {median(query) * 1000:.0f} ms over {args.repeats} ({args.artworks:,} rows)")
    print(f"cached scrape of the gauges: {cached_ms:.3f} ms")
    print("\n".join(plan))
    print(f"wrote {write_results('catalog_gauges', result)}")


if __name__ == "__main__":
    main()
