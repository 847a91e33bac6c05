"""The storage interface, on every backend (tests/ledger/conftest.py parametrizes the URL)."""

from __future__ import annotations

from pathlib import Path

from greenlang_llm.ledger import open_ledger
from greenlang_llm.ledger.base import HOUR_US, MAX_US, MIN_US
from greenlang_llm.ledger.migrations import latest_version
from greenlang_llm.ledger.records import BudgetRecord, UsageRecord

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def rec(offset_us: int, cost: int = 1000, tenant: str = "t", request_id: str | None = None) -> UsageRecord:
    return UsageRecord(T0 + offset_us, "p", tenant, "a", "m", 1, 2, 3, 0, 0, cost, 0, cost, False, request_id)


def test_schema_is_migrated_to_the_latest_version_and_reopening_is_a_no_op(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    assert ledger.schema_version() == latest_version()  # type: ignore[attr-defined]
    ledger.insert_many([rec(0)])
    if ":memory:" not in ledger_url:
        ledger.close()
        ledger = open_ledger(ledger_url)
        assert ledger.schema_version() == latest_version()  # type: ignore[attr-defined]
        assert ledger.count_records() == 1
    ledger.close()


def test_duplicate_request_id_is_written_once_even_within_one_batch(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    assert ledger.insert_many([rec(0, request_id="r1"), rec(1, request_id="r1"), rec(2)]) == [
        True,
        False,
        True,
    ]
    assert ledger.insert_many([rec(3, request_id="r1")]) == [False]
    assert ledger.count_records() == 2
    rows = ledger.summary_rows(MIN_US, MAX_US, None)
    assert rows == [("t", "p", "a", "m", 2, 6, 2000)]  # the rollup skipped the duplicates too
    ledger.close()


def test_summary_combines_rollup_hours_with_partial_edge_hours(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    ledger.insert_many(
        [rec(h * HOUR_US + 10, cost=h + 1) for h in range(5)] + [rec(3 * HOUR_US - 1, cost=100)]
    )
    # [00:00:00.000011, 03:59:59.999999]: first partial hour from raw rows, hours 1-2 rollup, hour 3 raw
    rows = ledger.summary_rows(T0 + 11, T0 + 4 * HOUR_US, None)
    assert sum(r[6] for r in rows) == 2 + 3 + 100 + 4
    assert sum(r[4] for r in rows) == 4
    assert ledger.hourly_costs(T0, T0 + 5 * HOUR_US, "t") == {
        T0: 1,
        T0 + HOUR_US: 2,
        T0 + 2 * HOUR_US: 103,
        T0 + 3 * HOUR_US: 4,
        T0 + 4 * HOUR_US: 5,
    }
    assert ledger.hourly_costs(T0, T0 + 5 * HOUR_US, "other") == {}
    ledger.close()


def test_iter_records_pages_in_timestamp_order(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    ledger.insert_many([rec(i % 7) for i in range(50)])
    out = list(ledger.iter_records(MIN_US, MAX_US, chunk=8))
    assert len(out) == 50
    assert [r.ts_us for r in out] == sorted(r.ts_us for r in out)
    assert len(list(ledger.iter_records(T0 + 3, T0 + 5))) == 14
    ledger.close()


def test_iter_records_filters_one_tenant_in_sql_across_pages(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    ledger.insert_many([rec(i % 7, tenant="abc"[i % 3]) for i in range(60)])
    fetched: list[tuple[object, ...]] = []
    read = ledger._read

    def counting_read(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        rows = read(sql, params)  # type: ignore[arg-type]
        fetched.extend(rows)
        return rows

    ledger._read = counting_read  # type: ignore[method-assign]
    out = list(ledger.iter_records(MIN_US, MAX_US, chunk=4, tenant_id="b"))
    assert [r.tenant_id for r in out] == ["b"] * 20
    assert [r.ts_us for r in out] == sorted(r.ts_us for r in out)
    assert len(fetched) == 20  # only b's rows left the database
    assert len(list(ledger.iter_records(T0 + 3, T0 + 5, tenant_id="c"))) == len(
        [i for i in range(60) if i % 7 in (3, 4) and i % 3 == 2]
    )
    assert list(ledger.iter_records(MIN_US, MAX_US, tenant_id="nobody")) == []
    ledger.close()


def test_budgets_and_alert_claims_persist(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    ledger.save_budget(BudgetRecord("t", 5, (0.5, 1.0), True), 0)
    ledger.save_budget(BudgetRecord("t", 7, (0.5,), False), 1)
    assert ledger.load_budgets() == {"t": BudgetRecord("t", 7, (0.5,), False)}
    assert ledger.claim_alert("t", "2026-01", 0.5, 0, 10) is True
    assert ledger.claim_alert("t", "2026-01", 0.5, 0, 10) is False
    assert ledger.fired_alerts("2026-01") == {("t", 0.5)}
    assert ledger.fired_alerts("2026-02") == set()
    ledger.close()


def test_sqlite_file_uses_wal(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/w.db")
    assert ledger._read("PRAGMA journal_mode")[0][0] == "wal"  # type: ignore[attr-defined]
    assert ledger._read("PRAGMA synchronous")[0][0] == 1  # NORMAL
    ledger.close()
    full = open_ledger(f"sqlite:///{tmp_path}/w.db?synchronous=full")
    assert full._read("PRAGMA synchronous")[0][0] == 2  # type: ignore[attr-defined]
    full.close()


def test_missing_sqlite_directory_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="does not exist"):
        open_ledger(f"sqlite:///{tmp_path}/nope/x.db")


def test_reports_over_any_range_agree_with_the_raw_rows(ledger_url: str) -> None:
    import random

    from greenlang_llm.ledger.base import DAY_US

    rng = random.Random(7)
    records = [
        rec(rng.randrange(4 * DAY_US), cost=rng.randrange(1, 10**6), tenant=rng.choice("xy"))
        for _ in range(400)
    ]
    ledger = open_ledger(ledger_url)
    ledger.insert_many(records)
    for _ in range(25):
        lo, hi = sorted(T0 + rng.randrange(-HOUR_US, 4 * DAY_US + HOUR_US) for _ in range(2))
        tenant = rng.choice([None, "x"])
        want = [r for r in records if lo <= r.ts_us < hi and tenant in (None, r.tenant_id)]
        rows = ledger.summary_rows(lo, hi, tenant)
        assert sum(r[6] for r in rows) == sum(r.total_cost_nanos for r in want)
        assert sum(r[4] for r in rows) == len(want)
        for unit in (HOUR_US, DAY_US):
            buckets = ledger.bucket_costs(lo, hi, tenant, unit)
            expected: dict[int, int] = {}
            for r in want:
                key = r.ts_us - r.ts_us % unit
                expected[key] = expected.get(key, 0) + r.total_cost_nanos
            assert buckets == expected
    ledger.close()


def test_a_version_1_ledger_is_upgraded_and_its_daily_rollup_backfilled(tmp_path: Path) -> None:
    import sqlite3

    from greenlang_llm.ledger.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0].sqlite:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    for h in (1, 2, 30):  # hours 1 and 2 on day one, hour 30 on day two
        conn.execute(
            "INSERT INTO usage_hourly VALUES (?, 't', 'p', 'a', 'm', 1, 1, 1, 2, ?)",
            (T0 + h * HOUR_US, 10 * h),
        )
    conn.commit()
    conn.close()
    ledger = open_ledger(f"sqlite:///{path}")
    assert ledger.schema_version() == latest_version()  # type: ignore[attr-defined]
    assert ledger._read("SELECT day_us, requests, cost_nanos FROM usage_daily ORDER BY day_us") == [  # type: ignore[attr-defined]
        (T0, 2, 30),
        (T0 + 24 * HOUR_US, 1, 300),
    ]
    ledger.close()
