"""The read side of the ledger: summaries, time series and exports, and the shaping they share.

:class:`LedgerReports` answers ``CostTracker``'s report methods (the tracker holds
one over its ledger). Everything here reads the durable ledger only, never the
month-to-date budget state, and is aggregated in SQL over integer nano-dollars;
floats appear only in what is returned, exact decimal strings in CSV exports.

Date rules (the public contract): ranges are inclusive and in UTC; a naive
datetime is UTC; a ``date`` as the end covers that whole day. Internally a
range is half-open ``[start_us, end_us)`` in epoch microseconds.

Exports are written to a temporary file in the target directory, fsynced and
renamed over the target, so a crash never leaves half a report.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any

from .._errors import InvalidRequestError
from ..money import nanos_to_str, nanos_to_usd
from .base import DAY_US, HOUR_US, MAX_US, MIN_US, LedgerStorage
from .records import UsageRecord, check_tenant, from_us, to_us, to_utc

__all__ = [
    "CSV_COLUMNS",
    "CostSummary",
    "LedgerReports",
    "atomic_text_file",
    "bucket_series",
    "record_dict",
    "resolve_range",
    "write_csv",
    "write_json",
]


@dataclass(frozen=True, slots=True)
class CostSummary:
    """Totals over a range; breakdowns map a name to its cost in USD (re-exported by cost_tracker)."""

    total_cost_usd: float
    total_tokens: int
    total_requests: int
    breakdown_by_provider: dict[str, float] = field(default_factory=dict)
    breakdown_by_agent: dict[str, float] = field(default_factory=dict)
    breakdown_by_model: dict[str, float] = field(default_factory=dict)
    breakdown_by_tenant: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CSV_COLUMNS = (
    "timestamp", "provider", "tenant_id", "agent_id", "model_id", "input_tokens", "output_tokens",
    "total_tokens", "input_cost_usd", "output_cost_usd", "total_cost_usd",
    "cache_read_tokens", "cache_write_tokens", "estimated", "request_id", "dropped_params",
)  # fmt: skip
"""Export columns, in order. New columns are appended, never inserted, so readers by position keep
working. ``dropped_params`` (the request fields the provider could not honour and the gateway left
out) is one comma-separated cell in CSV (``seed,presence_penalty``; empty when none) and a list of
names in JSON (``[]`` when none)."""
GRANULARITIES = ("hourly", "daily", "monthly")
_MAX_BUCKETS = 1_000_000


def _check_date(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, date):
        raise InvalidRequestError(f"{name} must be a datetime or date, got {type(value).__name__}")


def resolve_range(start: datetime | date | None, end: datetime | date | None) -> tuple[int, int]:
    """Inclusive public dates → half-open epoch-µs range."""
    _check_date("start_date", start)
    _check_date("end_date", end)
    start_us = MIN_US if start is None else to_us(to_utc(start))
    if end is None:
        end_us = MAX_US
    elif isinstance(end, datetime):
        end_us = to_us(to_utc(end)) + 1
    else:
        end_us = to_us(to_utc(end, end_of_day=True))
    return start_us, end_us


def _floor(dt: datetime, granularity: str) -> datetime:
    if granularity == "hourly":
        return dt.replace(minute=0, second=0, microsecond=0)
    if granularity == "daily":
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next(dt: datetime, granularity: str) -> datetime:
    if granularity == "hourly":
        return dt + timedelta(hours=1)
    if granularity == "daily":
        return dt + timedelta(days=1)
    return dt.replace(year=dt.year + 1, month=1) if dt.month == 12 else dt.replace(month=dt.month + 1)


def bucket_series(
    costs: dict[int, int], start_us: int, end_us: int, granularity: str
) -> list[tuple[datetime, int]]:
    """Every bucket from the one holding ``start`` to the one holding ``end - 1µs``, empty ones as 0."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; got {granularity!r}")
    if end_us <= start_us:
        return []
    first = _floor(from_us(start_us), granularity)
    last = _floor(from_us(end_us - 1), granularity)
    sums: dict[datetime, int] = {}
    for bucket_us, nanos in costs.items():  # hour or day starts; folded into the granularity
        key = _floor(from_us(bucket_us), granularity)
        sums[key] = sums.get(key, 0) + nanos
    out: list[tuple[datetime, int]] = []
    cur = first
    while cur <= last:
        out.append((cur, sums.get(cur, 0)))
        if len(out) > _MAX_BUCKETS:
            raise ValueError(f"time series too long: more than {_MAX_BUCKETS} {granularity} buckets")
        cur = _next(cur, granularity)
    return out


def record_dict(r: UsageRecord) -> dict[str, Any]:
    """One record as export fields: ISO 8601 UTC timestamp, exact decimal cost strings,
    ``dropped_params`` as a list of names."""
    return {
        "timestamp": r.timestamp.isoformat(),
        "provider": r.provider,
        "tenant_id": r.tenant_id,
        "agent_id": r.agent_id,
        "model_id": r.model_id,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "total_tokens": r.total_tokens,
        "input_cost_usd": nanos_to_str(r.input_cost_nanos),
        "output_cost_usd": nanos_to_str(r.output_cost_nanos),
        "total_cost_usd": nanos_to_str(r.total_cost_nanos),
        "cache_read_tokens": r.cache_read_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "estimated": r.estimated,
        "request_id": r.request_id,
        "dropped_params": list(r.dropped_params),
    }


@contextmanager
def atomic_text_file(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Write to a temp file beside ``path``; fsync and rename over it only when the block succeeds."""
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(target), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(path: str | os.PathLike[str], records: Iterable[UsageRecord]) -> int:
    count = 0
    with atomic_text_file(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in records:
            row = record_dict(r)
            row["estimated"] = "true" if r.estimated else "false"
            row["request_id"] = r.request_id or ""
            row["dropped_params"] = ",".join(r.dropped_params)
            writer.writerow([row[c] for c in CSV_COLUMNS])
            count += 1
    return count


def write_json(
    path: str | os.PathLike[str], records: Iterable[UsageRecord], summary: dict[str, Any] | None
) -> int:
    """``{"records": [...], "summary": {...}}``; costs are JSON numbers equal to the exact decimals."""
    count = 0
    with atomic_text_file(path) as fh:
        fh.write('{"records": [')
        for r in records:
            row = record_dict(r)
            for key in ("input_cost_usd", "output_cost_usd", "total_cost_usd"):
                row[key] = nanos_to_usd(getattr(r, key.replace("_usd", "_nanos")))
            fh.write(("," if count else "") + "\n  " + json.dumps(row))
            count += 1
        fh.write("\n]")
        if summary is not None:
            fh.write(', "summary": ' + json.dumps(summary))
        fh.write("}\n")
    return count


class LedgerReports:
    """Reports over one ledger. ``CostTracker`` delegates its report methods here; the
    signatures, validation and results are the ones ``docs/costs.md`` documents."""

    __slots__ = ("_ledger",)

    def __init__(self, ledger: LedgerStorage) -> None:
        self._ledger = ledger

    def summary(
        self,
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        tenant_id: str | None = None,
    ) -> CostSummary:
        """Totals and breakdowns over an inclusive UTC range (aggregated in SQL over integer nanos)."""
        start_us, end_us = resolve_range(start_date, end_date)
        cost = tokens = requests = 0
        by: list[dict[str, int]] = [{}, {}, {}, {}]  # tenant, provider, agent, model
        for row in self._ledger.summary_rows(start_us, end_us, tenant_id):
            names, (n, t, c) = row[:4], row[4:]
            requests += n
            tokens += t
            cost += c
            for bucket, name in zip(by, names, strict=True):
                bucket[name] = bucket.get(name, 0) + c
        tenant, provider, agent, model = ({k: nanos_to_usd(v) for k, v in sorted(b.items())} for b in by)
        return CostSummary(nanos_to_usd(cost), tokens, requests, provider, agent, model, tenant)

    def time_series(
        self,
        start_date: datetime | date | None,
        end_date: datetime | date | None,
        granularity: str = "daily",
        tenant_id: str | None = None,
    ) -> list[tuple[datetime, float]]:
        """Cost per bucket, in order, empty buckets as 0.0; buckets start at UTC hour/day/month."""
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; got {granularity!r}")
        start_us, end_us = resolve_range(start_date, end_date)
        unit = HOUR_US if granularity == "hourly" else DAY_US
        costs = self._ledger.bucket_costs(start_us, end_us, tenant_id, unit)
        if start_date is None or end_date is None:
            if not costs:
                return []
            start_us = max(start_us, min(costs)) if start_date is None else start_us
            end_us = min(end_us, max(costs) + 1) if end_date is None else end_us
        return [(ts, nanos_to_usd(v)) for ts, v in bucket_series(costs, start_us, end_us, granularity)]

    def export_csv(
        self,
        path: str | os.PathLike[str],
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        *,
        tenant_id: str | None = None,
    ) -> int:
        """One row per record (columns in docs/costs.md); returns the row count.

        ``tenant_id`` exports only that tenant's records (filtered by the ledger, in SQL).
        """
        start_us, end_us = resolve_range(start_date, end_date)
        tenant = None if tenant_id is None else check_tenant(tenant_id)
        return write_csv(path, self._ledger.iter_records(start_us, end_us, tenant_id=tenant))

    def export_json(
        self,
        path: str | os.PathLike[str],
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        include_summary: bool = False,
        *,
        tenant_id: str | None = None,
    ) -> int:
        """``{"records": [...], "summary": {...}}`` (summary only when asked); returns the record count.

        ``tenant_id`` exports only that tenant's records, and the summary is then that tenant's.
        """
        start_us, end_us = resolve_range(start_date, end_date)
        tenant = None if tenant_id is None else check_tenant(tenant_id)
        summary = self.summary(start_date, end_date, tenant).to_dict() if include_summary else None
        return write_json(path, self._ledger.iter_records(start_us, end_us, tenant_id=tenant), summary)
