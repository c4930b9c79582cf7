"""What the catalog gauges of GET /metrics cost on a large PostgreSQL catalog, and what the triggers
keeping `artwork_status_counts` cost the writers.

    python -m benchmarks.catalog_gauges [--artworks 1000000] [--repeats 5] [--bulk 100000]

Fills a fresh catalog with `--artworks` synthetic rows (`bulk_catalog`: 2% pending, 1% failed, 1% gone,
the rest processed), then times the old way (one grouped count over every artwork row) against the
counts table (`status_counts.read`, what `serving.catalog_gauges.count_catalog` runs), reads after
1,000 single-row status changes (the deltas a fold compacts) and the fold itself, a cached scrape,
and shows both plans. Then the trigger cost, with the counts triggers enabled and disabled in turn:
`bulk_catalog.load` of `--bulk` rows, its artwork INSERT ... SELECT alone, and an upsert of those rows
(INSERT ... ON CONFLICT DO UPDATE changing every status). Finally checks the counts table still
equals the real GROUP BY.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from benchmarks.bulk_catalog import ARTWORK_SQL
from benchmarks.bulk_catalog import load as bulk_load
from benchmarks.common import machine, median, write_results
from benchmarks.stack import running_stack
from serving.catalog_gauges import CatalogGauges, count_catalog
from tvdb_images.catalog import status_counts
from tvdb_images.pipeline.settings import PipelineSettings

TRIGGERS = ("insert", "update", "delete")
UPSERT_SQL = text(
    "INSERT INTO artwork (id, content_type, content_id, image_type, source_url, status) "
    "SELECT id, content_type, content_id, image_type, source_url, 'downloaded' FROM artwork "
    "WHERE id BETWEEN :first AND :last "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = now()"
)
SEQ_SCAN_ON_ARTWORK = re.compile(r"Seq Scan on artwork(\s|$)")


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _sql(statement: Any, connection: Connection) -> str:
    return str(statement.compile(connection, compile_kwargs={"literal_binds": True}))


def _plan(engine: Engine, sql: str) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.exec_driver_sql("EXPLAIN (ANALYZE) " + sql)]


def _set_triggers(engine: Engine, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with engine.begin() as connection:
        for event in TRIGGERS:
            connection.exec_driver_sql(f"ALTER TABLE artwork {verb} TRIGGER artwork_status_counts_{event}")


def _trigger_cost(url: str, engine: Engine, bulk: int, repeats: int, signature: str) -> dict[str, Any]:
    """With the triggers on and off: `bulk_catalog.load` of `bulk` fresh rows (artworks, renditions,
    ANALYZE), its artwork INSERT ... SELECT alone on another `bulk`, and an upsert of those. Rows
    written with the triggers off are deleted with them off too, so the counts stay exact."""
    runs: dict[str, dict[str, list[float]]] = {
        mode: {"load": [], "insert": [], "upsert": []} for mode in ("triggers", "no_triggers")
    }
    first = 100_000_000
    for repeat in range(repeats):
        modes = ("triggers", "no_triggers") if repeat % 2 == 0 else ("no_triggers", "triggers")
        for mode in modes:
            _set_triggers(engine, mode == "triggers")
            loaded = bulk_load(url, bulk, signature=signature, pending_percent=2, first_id=first)
            runs[mode]["load"].append(loaded.seconds)
            span = {"first": first + bulk, "last": first + 2 * bulk - 1}
            params = span | {"signature": signature, "content_base": 60_000_000, "pending_percent": 2}
            with engine.begin() as connection:
                started = time.perf_counter()
                connection.exec_driver_sql(ARTWORK_SQL, params)
            runs[mode]["insert"].append(time.perf_counter() - started)
            with engine.begin() as connection:
                started = time.perf_counter()
                connection.execute(UPSERT_SQL, span)
            runs[mode]["upsert"].append(time.perf_counter() - started)
            if mode == "no_triggers":
                with engine.begin() as connection:
                    connection.execute(
                        text("DELETE FROM artwork WHERE id BETWEEN :a AND :b"),
                        {"a": first, "b": first + 2 * bulk - 1},
                    )
            _set_triggers(engine, True)
            steps = ", ".join(f"{step} {times[-1]:.2f} s" for step, times in runs[mode].items())
            print(f"{mode}: {steps}", flush=True)
            first += 2 * bulk
    medians = {mode: {step: median(times) for step, times in steps.items()} for mode, steps in runs.items()}
    explained = _trigger_plans(engine, first, bulk, signature, repeats)
    return {"rows": bulk, "runs": runs, "medians": medians} | explained


def _trigger_plans(engine: Engine, first: int, bulk: int, signature: str, repeats: int) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the insert and the upsert of `bulk` rows, rolled back, with the triggers on
    and off in turn: PostgreSQL reports the time spent in each AFTER trigger, a figure the machine's
    load hardly blurs, and each statement's execution time without the commit."""
    span = {"first": first, "last": first + bulk - 1}
    params = span | {"signature": signature, "content_base": 70_000_000, "pending_percent": 2}
    kept = ("Trigger", "Execution Time")
    found: dict[str, Any] = {"plans": {}, "execution_ms": {"triggers": [], "no_triggers": []}}
    for repeat in range(repeats):
        modes = ("triggers", "no_triggers") if repeat % 2 == 0 else ("no_triggers", "triggers")
        for mode in modes:
            _set_triggers(engine, mode == "triggers")
            with engine.connect() as connection, connection.begin() as transaction:
                insert = [
                    row[0] for row in connection.exec_driver_sql("EXPLAIN (ANALYZE) " + ARTWORK_SQL, params)
                ]
                upsert = [
                    row[0] for row in connection.execute(text("EXPLAIN (ANALYZE) " + str(UPSERT_SQL)), span)
                ]
                transaction.rollback()
            _set_triggers(engine, True)
            times = {name: _execution_ms(plan) for name, plan in (("insert", insert), ("upsert", upsert))}
            found["execution_ms"][mode].append(times)
            if mode == "triggers":
                found["plans"] = {
                    name: [line for line in plan if line.lstrip().startswith(kept)]
                    for name, plan in (("insert", insert), ("upsert", upsert))
                }
            print(f"EXPLAIN {mode}: {times}", flush=True)
    return found


def _execution_ms(plan: list[str]) -> float:
    line = next(line for line in plan if line.startswith("Execution Time"))
    return float(line.split(":")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artworks", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--bulk-repeats", type=int, default=3)
    parser.add_argument("--name", default="catalog_gauges", help="results file name (benchmarks/results/)")
    args = parser.parse_args()
    context = machine()
    with running_stack("bench_catalog_gauges", with_origin=False) as stack:
        signature = PipelineSettings.from_settings(stack.settings()).signature
        bulk = bulk_load(stack.database_url, args.artworks, signature=signature, pending_percent=2)
        print(f"loaded {args.artworks:,} artworks in {bulk.seconds:.0f} s (triggers on)", flush=True)
        engine = stack.catalog.engine
        status_counts.fold(engine)
        with engine.connect() as connection:
            full_sql = _sql(status_counts.exact_statement(), connection)
            counts_sql = _sql(status_counts.read_statement(), connection)
            status_counts.exact(connection)  # warm the buffer cache, as a running server's would be
            full = [_timed(lambda: status_counts.exact(connection)) for _ in range(args.repeats)]
            table = [_timed(lambda: status_counts.read(connection)) for _ in range(args.repeats)]
        scrape = [count_catalog(engine).seconds for _ in range(args.repeats)]
        with engine.begin() as connection:  # 500 statements x 2 deltas: what folds compact
            for artwork_id in range(10_000_000, 10_000_500):
                connection.execute(
                    text("UPDATE artwork SET status = 'pending' WHERE id = :id"), {"id": artwork_id}
                )
        with engine.connect() as connection:
            deltas = status_counts.read(connection).rows
            piled = [_timed(lambda: status_counts.read(connection)) for _ in range(args.repeats)]
        fold_seconds = _timed(lambda: status_counts.fold(engine))
        gauges = CatalogGauges(engine, ttl=3600)
        list(gauges.collect())
        started = time.perf_counter()
        for _ in range(100):
            list(gauges.collect())
        cached_ms = (time.perf_counter() - started) * 1000 / 100
        full_plan = _plan(engine, full_sql)
        counts_plan = _plan(engine, counts_sql)
        assert not any(SEQ_SCAN_ON_ARTWORK.search(line) for line in counts_plan), counts_plan
        trigger_cost = _trigger_cost(stack.database_url, engine, args.bulk, args.bulk_repeats, signature)
        with engine.connect() as connection:
            equal = status_counts.read(connection).counts == status_counts.exact(connection)
        counts = count_catalog(engine)
    result: dict[str, Any] = {
        "machine": context | {"load_average_after": machine()["load_average"]},
        "artworks": args.artworks,
        "load_seconds_with_triggers": bulk.seconds,
        "full_count_seconds": full,
        "full_count_seconds_median": median(full),
        "counts_table_seconds": table,
        "counts_table_seconds_median": median(table),
        "count_catalog_seconds": scrape,
        "piled_deltas": deltas,
        "piled_read_seconds_median": median(piled),
        "fold_seconds": fold_seconds,
        "cached_scrape_ms": cached_ms,
        "full_count_plan": full_plan,
        "counts_table_plan": counts_plan,
        "trigger_cost": trigger_cost,
        "counts_equal_group_by": equal,
        "backlog": {f"{status}/{cause}": n for (status, cause), n in counts.backlog.items()},
        "processed": counts.processed,
    }
    ms = 1000
    print(
        f"full grouped count: median {median(full) * ms:.1f} ms over {args.repeats} ({args.artworks:,} rows)"
    )
    print(f"counts table: median {median(table) * ms:.2f} ms; count_catalog {median(scrape) * ms:.2f} ms")
    print(f"with {deltas} delta rows: read {median(piled) * ms:.2f} ms, fold {fold_seconds * ms:.1f} ms")
    print(f"cached scrape of the gauges: {cached_ms:.3f} ms")
    print("full count plan:\n  " + "\n  ".join(full_plan))
    print("counts table plan:\n  " + "\n  ".join(counts_plan))
    print(f"trigger cost ({args.bulk:,} rows): {trigger_cost['medians']}")
    for statement, lines in trigger_cost["plans"].items():
        print(f"{statement}: " + "; ".join(line.strip() for line in lines))
    for mode, times in trigger_cost["execution_ms"].items():
        steps = {step: median([run[step] for run in times]) for step in ("insert", "upsert")}
        print(f"EXPLAIN ANALYZE medians, {mode}: {steps} ms")
    print(f"counts table equals GROUP BY: {equal}")
    print(f"wrote {write_results(args.name, result)}")
    assert equal


if __name__ == "__main__":
    main()
