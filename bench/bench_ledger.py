"""Ledger benchmark: track_usage records/s and report latency over 1,000,000 records.

    python bench/bench_ledger.py                 # SQLite, plus PostgreSQL writes if reachable
    python bench/bench_ledger.py --records 200000 --no-postgres

Write rates are durable rates (every call returns after its commit). Report
timings are the median of 5 runs each over the filled ledger. Each figure is
given by the wall clock and per CPU second of this process (the latter does
not depend on other load on the machine; for PostgreSQL it leaves out the
server's own CPU).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from greenlang_llm import CostTracker, TokenUsage

PG = "postgresql://postgres@127.0.0.1:5432/test"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _usage(rng: random.Random) -> TokenUsage:
    inp, out = rng.randint(10, 5000), rng.randint(1, 2000)
    ic, oc = round(inp * 3e-6, 9), round(out * 15e-6, 9)
    return TokenUsage(inp, out, inp + out, ic, oc, round(ic + oc, 9))


def _items(n: int, rng: random.Random, days: int = 30) -> list[dict[str, Any]]:
    span = days * 86_400
    # Live traffic arrives in time order; the ledger is tuned for that.
    stamps = sorted(START + timedelta(seconds=rng.random() * span) for _ in range(n))
    return [
        {
            "provider": rng.choice(["anthropic", "openai", "azure"]),
            "tenant_id": f"tenant-{rng.randrange(5)}",
            "agent_id": f"agent-{rng.randrange(4)}",
            "model_id": f"model-{rng.randrange(5)}",
            "usage": _usage(rng),
            "timestamp": ts,
        }
        for ts in stamps
    ]


def _rate(n: int, fn: Callable[[], None]) -> tuple[float, float]:
    """(records per wall second, records per CPU second of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def bench_writes(url: str, n: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(1)
    items = _items(n, rng)
    out: dict[str, tuple[float, float]] = {}
    with CostTracker(storage=url) as tracker:

        def single() -> None:
            for it in items:
                tracker.track_usage(**it)

        out["track_usage, 1 thread"] = _rate(n, single)

        def threaded() -> None:
            per = n // 8

            def work(k: int) -> None:
                for it in items[k * per : (k + 1) * per]:
                    tracker.track_usage(**it)

            threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        out["track_usage, 8 threads"] = _rate(n // 8 * 8, threaded)
        keyed = [{**it, "request_id": uuid.uuid4().hex} for it in items]

        def keyed_single() -> None:
            for it in keyed[: n // 2]:
                tracker.track_usage(**it)

        out["track_usage with request_id, 1 thread"] = _rate(n // 2, keyed_single)
        big = items * 5

        def many() -> None:
            for i in range(0, len(big), 1000):
                tracker.track_many(big[i : i + 1000])

        out["track_many, batches of 1000"] = _rate(len(big), many)
    return out


def bench_reports(url: str, records: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(2)
    out: dict[str, tuple[float, float]] = {}
    with CostTracker(storage=url) as tracker:
        batches = [_items(min(50_000, records - i), rng) for i in range(0, records, 50_000)]

        def fill() -> None:
            for batch in batches:
                tracker.track_many(batch)

        out["fill (track_many 50k batches), records/s"] = _rate(records, fill)
        end = START + timedelta(days=30)
        odd_start, odd_end = START + timedelta(days=3, minutes=17), START + timedelta(days=20, minutes=41)
        calls: dict[str, Callable[[], object]] = {
            "get_summary() all": lambda: tracker.get_summary(),
            "get_summary(range off hours, tenant)": lambda: tracker.get_summary(
                odd_start, odd_end, "tenant-1"
            ),
            "get_time_series daily": lambda: tracker.get_time_series(START, end, "daily"),
            "get_time_series hourly, tenant": lambda: tracker.get_time_series(
                START, end, "hourly", "tenant-2"
            ),
            "get_time_series monthly": lambda: tracker.get_time_series(START, end, "monthly"),
        }
        assert tracker.get_summary().total_requests == records
        for name, call in calls.items():
            runs, cpu = [], []
            for _ in range(5):
                t0, c0 = time.perf_counter(), time.process_time()
                call()
                runs.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            out[name + ", s (median of 5)"] = (statistics.median(runs), statistics.median(cpu))
    return out


def _pg_url() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG, connect_timeout=2):
            pass
    except Exception as exc:
        print(f"PostgreSQL unreachable, skipped: {exc}")
        return None
    return f"{PG}?schema=gl_bench_{uuid.uuid4().hex[:8]}"


def _drop(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _sqlite(tmp: str, args: argparse.Namespace, rows: list[tuple[str, str, tuple[float, float]]]) -> None:
    for k, v in bench_writes(f"sqlite:///{tmp}/w.db", args.writes).items():
        rows.append(("SQLite (WAL, synchronous=NORMAL)", k + ", records/s", v))
    for k, v in bench_writes(f"sqlite:///{tmp}/f.db?synchronous=full", args.writes // 4).items():
        rows.append(("SQLite (WAL, synchronous=FULL)", k + ", records/s", v))
    for k, v in bench_reports(f"sqlite:///{tmp}/r.db", args.records).items():
        rows.append((f"SQLite, {args.records:,} records", k, v))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--postgres-reports", action="store_true", help="also fill PostgreSQL with --records")
    args = parser.parse_args()
    rows: list[tuple[str, str, tuple[float, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            _sqlite(tmp, args, rows)
    if not args.no_postgres and (url := _pg_url()):
        try:
            for k, v in bench_writes(url, args.writes // 4).items():
                rows.append(("PostgreSQL 15 (local)", k + ", records/s", v))
            if args.postgres_reports:
                _drop(url)
                for k, v in bench_reports(url, args.records).items():
                    rows.append((f"PostgreSQL, {args.records:,} records", k, v))
        finally:
            _drop(url)
    print("| backend | measure | wall clock | per CPU second of this process |\n|---|---|---|---|")
    for backend, measure, values in rows:
        shown = [f"{v:,.0f}" if v >= 100 else f"{v:.4f}" for v in values]
        print(f"| {backend} | {measure} | {shown[0]} | {shown[1]} |")


if __name__ == "__main__":
    main()
