"""The storage interface every ledger backend implements, and the SQL they share.

A backend supplies four primitives — a read, a one-statement write, the batch
write of usage rows (with their hourly rollup, in one transaction) and close —
and inherits the rest: group commit, budgets, alert claims and the report
queries. All SQL here is written with ``?`` placeholders; a backend may
rewrite them (PostgreSQL uses ``%s``).

Reports read the per-day rollup for the whole days of a range, the per-hour
rollup for the whole hours at its edges, and raw rows only for the partial
hours at its ends, so a summary over a million rows reads a few thousand rows.
"""

from __future__ import annotations

import contextlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from .group_commit import GroupCommitter
from .records import BudgetRecord, UsageRecord

__all__ = ["HOUR_US", "LedgerBusy", "LedgerStorage", "SummaryRow"]


class LedgerBusy(Exception):
    """A commit asked not to wait found another writer holding the ledger: nothing was written."""

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
MIN_US = -(2**62)
MAX_US = 2**62

SummaryRow = tuple[str, str, str, str, int, int, int]
"""(tenant_id, provider, agent_id, model_id, requests, total_tokens, cost_nanos)."""

RECORD_COLUMNS = (
    "ts_us, provider, tenant_id, agent_id, model_id, input_tokens, output_tokens, total_tokens, "
    "cache_read_tokens, cache_write_tokens, input_cost_nanos, output_cost_nanos, total_cost_nanos, "
    "estimated, request_id, dropped_params"
)
INSERT_RECORD = f"INSERT INTO usage_records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * 16)})"
INSERT_RECORD_ONCE = INSERT_RECORD + " ON CONFLICT (request_id) DO NOTHING"


def _upsert(table: str, time_col: str) -> str:
    keys = f"{time_col}, tenant_id, provider, agent_id, model_id"
    sums = ("requests", "input_tokens", "output_tokens", "total_tokens", "cost_nanos")
    return (
        f"INSERT INTO {table} ({keys}, {', '.join(sums)}) VALUES ({', '.join('?' * 10)}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
    )


UPSERT_HOURLY = _upsert("usage_hourly", "hour_us")
UPSERT_DAILY = _upsert("usage_daily", "day_us")


def record_params(r: UsageRecord) -> tuple[Any, ...]:
    return (
        r.ts_us,
        r.provider,
        r.tenant_id,
        r.agent_id,
        r.model_id,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.input_cost_nanos,
        r.output_cost_nanos,
        r.total_cost_nanos,
        int(r.estimated),
        r.request_id,
        ",".join(r.dropped_params) if r.dropped_params else None,  # names hold no comma (records.py)
    )


def rollup_statements(records: Sequence[UsageRecord]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The upserts that add ``records`` to the hourly and daily rollups (empty when nothing to add)."""
    if not records:
        return []
    return [(UPSERT_HOURLY, rollup_params(records, HOUR_US)), (UPSERT_DAILY, rollup_params(records, DAY_US))]


def rollup_params(records: Sequence[UsageRecord], unit_us: int) -> list[tuple[Any, ...]]:
    """Aggregate rows per (time unit, tenant, provider, agent, model), sorted so writers lock in one order."""
    agg: dict[tuple[int, str, str, str, str], list[int]] = {}
    for r in records:
        key = (r.ts_us - r.ts_us % unit_us, r.tenant_id, r.provider, r.agent_id, r.model_id)
        acc = agg.get(key)
        if acc is None:
            agg[key] = [1, r.input_tokens, r.output_tokens, r.total_tokens, r.total_cost_nanos]
        else:
            acc[0] += 1
            acc[1] += r.input_tokens
            acc[2] += r.output_tokens
            acc[3] += r.total_tokens
            acc[4] += r.total_cost_nanos
    return [(*key, *vals) for key, vals in sorted(agg.items())]


def row_to_record(row: Sequence[Any]) -> UsageRecord:
    """A ``SELECT id, <RECORD_COLUMNS>`` row (id first) as a record."""
    return UsageRecord(
        ts_us=int(row[1]),
        provider=row[2],
        tenant_id=row[3],
        agent_id=row[4],
        model_id=row[5],
        input_tokens=int(row[6]),
        output_tokens=int(row[7]),
        total_tokens=int(row[8]),
        cache_read_tokens=int(row[9]),
        cache_write_tokens=int(row[10]),
        input_cost_nanos=int(row[11]),
        output_cost_nanos=int(row[12]),
        total_cost_nanos=int(row[13]),
        estimated=bool(row[14]),
        request_id=row[15],
        dropped_params=tuple(row[16].split(",")) if row[16] else (),  # NULL or "": none
    )


def _split(start_us: int, end_us: int, unit: int) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """Split ``[start, end)`` into whole ``unit``s and the partial ranges at its edges."""
    first = -(-start_us // unit) * unit
    last = end_us - end_us % unit
    if first >= last:
        return None, [(start_us, end_us)] if start_us < end_us else []
    edges = []
    if start_us < first:
        edges.append((start_us, first))
    if last < end_us:
        edges.append((last, end_us))
    return (first, last), edges


# level → (table, time column, request count, cost column)
_LEVELS = {
    "daily": ("usage_daily", "day_us", "SUM(requests)", "cost_nanos"),
    "hourly": ("usage_hourly", "hour_us", "SUM(requests)", "cost_nanos"),
    "raw": ("usage_records", "ts_us", "COUNT(*)", "total_cost_nanos"),
}


def plan(start_us: int, end_us: int, use_days: bool = True) -> list[tuple[str, int, int]]:
    """Cover ``[start, end)`` with whole days (daily rollup), whole hours (hourly rollup) and raw edges."""
    out: list[tuple[str, int, int]] = []
    hour_ranges = [(start_us, end_us)]
    if use_days:
        days, hour_ranges = _split(start_us, end_us, DAY_US)
        if days is not None:
            out.append(("daily", *days))
    for lo, hi in hour_ranges:
        hours, raw = _split(lo, hi, HOUR_US)
        if hours is not None:
            out.append(("hourly", *hours))
        out += [("raw", a, b) for a, b in raw]
    return out


class LedgerStorage(ABC):
    """A durable ledger: usage rows, hourly rollup, budgets and fired alerts."""

    url: str

    quick_commits: bool = False
    """A commit costs no network round trip and no disk sync (SQLite in WAL with
    ``synchronous=normal``): cheap enough to run on an event loop. The gateway's ledger
    writer then commits on the loop instead of handing each batch to a thread."""

    def __init__(self) -> None:
        self._committer: GroupCommitter[UsageRecord, bool] = GroupCommitter(self._write_records)
        self._closed = False
        self._close_lock = threading.Lock()

    # -- primitives a backend implements --------------------------------------------------------
    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own committed transaction; return the affected row count."""

    @abstractmethod
    def _write_records(self, records: list[UsageRecord]) -> list[bool]:
        """Insert rows and their rollup in one durable transaction; True where a row was written."""

    @abstractmethod
    def _close(self) -> None: ...

    def commit_without_waiting(self) -> contextlib.AbstractContextManager[None]:
        """Within this block (on this thread), a commit that would wait for another writer's lock
        raises ``LedgerBusy`` instead, having written nothing. Only quick-commit backends wait on
        such a lock at all; the others ignore the request."""
        return contextlib.nullcontext()

    # -- usage -----------------------------------------------------------------------------------
    def insert_many(self, records: Sequence[UsageRecord]) -> list[bool]:
        """Durably insert; a duplicate ``request_id`` is skipped (False in the result)."""
        if not records:
            return []
        return self._committer.submit(records)

    @property
    def commits(self) -> int:
        return self._committer.commits

    def count_records(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM usage_records")[0][0])

    def iter_records(
        self, start_us: int, end_us: int, chunk: int = 5000, *, tenant_id: str | None = None
    ) -> Iterator[UsageRecord]:
        """Rows with ``start <= ts < end`` in (timestamp, id) order, read in chunks (keyset paging).

        ``tenant_id`` keeps one tenant's rows, filtered in SQL (index ``ix_usage_tenant_ts``)
        so an export for one tenant does not read everybody's rows.
        """
        tenant_sql, tenant_args = ("tenant_id = ? AND ", (tenant_id,)) if tenant_id is not None else ("", ())
        sql = (
            f"SELECT id, {RECORD_COLUMNS} FROM usage_records WHERE {tenant_sql}ts_us < ? AND "
            "(ts_us > ? OR (ts_us = ? AND id > ?)) ORDER BY ts_us, id LIMIT ?"
        )
        last_ts, last_id = start_us, -1
        while True:
            rows = self._read(sql, (*tenant_args, end_us, last_ts, last_ts, last_id, chunk))
            for row in rows:
                yield row_to_record(row)
            if len(rows) < chunk:
                return
            last_ts, last_id = int(rows[-1][1]), int(rows[-1][0])

    def summary_rows(self, start_us: int, end_us: int, tenant_id: str | None) -> list[SummaryRow]:
        tenant_sql, tenant_args = (" AND tenant_id = ?", (tenant_id,)) if tenant_id is not None else ("", ())
        dims = "tenant_id, provider, agent_id, model_id"
        out: list[SummaryRow] = []
        for level, lo, hi in plan(start_us, end_us):
            table, col, count, cost = _LEVELS[level]
            rows = self._read(
                f"SELECT {dims}, {count}, SUM(total_tokens), SUM({cost}) FROM {table} "
                f"WHERE {col} >= ? AND {col} < ?{tenant_sql} GROUP BY {dims}",
                (lo, hi, *tenant_args),
            )
            out += [(a, b, c, d, int(n), int(t), int(x)) for a, b, c, d, n, t, x in rows]
        return out

    def bucket_costs(self, start_us: int, end_us: int, tenant_id: str | None, unit_us: int) -> dict[int, int]:
        """Cost per ``unit_us`` bucket (HOUR_US or DAY_US; key = bucket start) over ``[start, end)``."""
        tenant_sql, tenant_args = (" AND tenant_id = ?", (tenant_id,)) if tenant_id is not None else ("", ())
        out: dict[int, int] = {}
        for level, lo, hi in plan(start_us, end_us, use_days=unit_us >= DAY_US):
            table, col, _, cost = _LEVELS[level]
            bucket = f"{col} - ({col} % {unit_us})"
            rows = self._read(
                f"SELECT {bucket}, SUM({cost}) FROM {table} WHERE {col} >= ? AND {col} < ?{tenant_sql} "
                f"GROUP BY {bucket}",
                (lo, hi, *tenant_args),
            )
            for start, nanos in rows:
                out[int(start)] = out.get(int(start), 0) + int(nanos)
        return out

    def hourly_costs(self, start_us: int, end_us: int, tenant_id: str | None) -> dict[int, int]:
        return self.bucket_costs(start_us, end_us, tenant_id, HOUR_US)

    def tenant_hourly_costs(self, start_us: int) -> list[tuple[str, int, int]]:
        """(tenant, hour, cost) for every hour from ``start_us`` on: rebuilds month-to-date state."""
        rows = self._read(
            "SELECT tenant_id, hour_us, SUM(cost_nanos) FROM usage_hourly WHERE hour_us >= ? "
            "GROUP BY tenant_id, hour_us",
            (start_us - start_us % HOUR_US,),
        )
        return [(t, int(h), int(c)) for t, h, c in rows]

    def tenant_totals(self) -> dict[str, int]:
        """All-time cost per tenant (for budgets that never reset)."""
        rows = self._read("SELECT tenant_id, SUM(cost_nanos) FROM usage_daily GROUP BY tenant_id")
        return {t: int(c) for t, c in rows}

    # -- budgets and alerts --------------------------------------------------------------------
    def save_budget(self, budget: BudgetRecord, now_us: int) -> None:
        self._write(
            "INSERT INTO budgets (tenant_id, limit_nanos, thresholds, hard_limit, updated_us) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET "
            "limit_nanos = excluded.limit_nanos, thresholds = excluded.thresholds, "
            "hard_limit = excluded.hard_limit, updated_us = excluded.updated_us",
            (
                budget.tenant_id,
                budget.limit_nanos,
                json.dumps(list(budget.thresholds)),
                int(budget.hard_limit),
                now_us,
            ),
        )

    def load_budgets(self) -> dict[str, BudgetRecord]:
        rows = self._read("SELECT tenant_id, limit_nanos, thresholds, hard_limit FROM budgets")
        return {
            t: BudgetRecord(t, int(limit), tuple(float(x) for x in json.loads(th)), bool(hard))
            for t, limit, th, hard in rows
        }

    def claim_alert(
        self, tenant_id: str, period: str, threshold: float, now_us: int, cost_nanos: int
    ) -> bool:
        """Record that an alert fired; False when it had already fired (by us or another process)."""
        return (
            self._write(
                "INSERT INTO budget_alerts (tenant_id, period, threshold, fired_us, cost_nanos) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, period, threshold) DO NOTHING",
                (tenant_id, period, repr(float(threshold)), now_us, cost_nanos),
            )
            == 1
        )

    def fired_alerts(self, period: str) -> set[tuple[str, float]]:
        rows = self._read("SELECT tenant_id, threshold FROM budget_alerts WHERE period = ?", (period,))
        return {(t, float(th)) for t, th in rows}

    def close(self) -> None:
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._close()
