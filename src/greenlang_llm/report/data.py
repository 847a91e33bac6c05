"""What a cost report shows, gathered once from a ``CostTracker`` (+ optional run info).

Why one model for both outputs: the terminal tables and the HTML page must tell
the same story, and ``greenlang-llm costs report`` must rebuild the demo's page
from any ledger. So everything is read through the tracker's public API
(``export_json`` records, ``check_budget``) and summed here exactly with
``Decimal``; things only a live run knows (breaker transitions, failovers,
latency samples) come in as an optional :class:`RunInfo`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..money import parse_usd

__all__ = [
    "AlertEvent",
    "BreakdownRow",
    "BreakerEvent",
    "BudgetRow",
    "FailoverEvent",
    "ReportData",
    "RunInfo",
    "UsageRecord",
    "collect_report_data",
    "percentile",
]

DIMENSIONS = ("provider", "tenant_id", "agent_id", "model_id")
_BUCKETS = tuple(
    timedelta(seconds=s)
    for s in (
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        10800,
        21600,
        43200,
        86400,
        7 * 86400,
        30 * 86400,
    )
)
_MAX_BUCKETS = 90


@dataclass(frozen=True, slots=True)
class UsageRecord:
    timestamp: datetime
    provider: str
    tenant_id: str
    agent_id: str
    model_id: str
    input_tokens: int
    output_tokens: int
    total_cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    name: str
    requests: int
    tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class BudgetRow:
    tenant_id: str
    limit_usd: float
    spent_usd: float
    percentage_used: float
    remaining_usd: float
    projected_monthly_usd: float
    thresholds: tuple[float, ...]
    alert_level: float | None


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    at: datetime
    provider: str
    old_state: str
    new_state: str


@dataclass(frozen=True, slots=True)
class FailoverEvent:
    at: datetime
    tenant_id: str
    agent_id: str
    from_provider: str
    to_provider: str
    error: str


@dataclass(frozen=True, slots=True)
class AlertEvent:
    at: datetime
    tenant_id: str
    threshold: float
    current_cost_usd: float


@dataclass(slots=True)
class RunInfo:
    """What only a live run knows; the demo fills it, ``costs report`` has none."""

    title: str = "greenlang-llm demo run"
    mode: str = "simulator"
    strategy: str = ""
    seed: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    planned_requests: int = 0
    failed_requests: int = 0
    streamed_requests: int = 0
    breaker_events: list[BreakerEvent] = field(default_factory=list)
    failovers: list[FailoverEvent] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    faults: list[tuple[datetime, str]] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    thresholds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(slots=True)
class ReportData:
    generated_at: datetime
    start: datetime | None
    end: datetime | None
    tenant_id: str | None
    records: list[UsageRecord]
    budgets: list[BudgetRow]
    run: RunInfo | None = None

    @property
    def total_cost_usd(self) -> Decimal:
        return sum((r.total_cost_usd for r in self.records), Decimal(0))

    @property
    def total_tokens(self) -> int:
        return sum(r.input_tokens + r.output_tokens for r in self.records)

    def breakdown(self, dimension: str) -> list[BreakdownRow]:
        """Requests, tokens and exact cost per value of one dimension, costliest first."""
        acc: dict[str, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
        for r in self.records:
            row = acc[getattr(r, dimension)]
            row[0] += 1
            row[1] += r.input_tokens + r.output_tokens
            row[2] += r.total_cost_usd
        rows = [BreakdownRow(k, v[0], v[1], v[2]) for k, v in acc.items()]
        return sorted(rows, key=lambda row: (-row.cost_usd, row.name))

    def bucket(self) -> timedelta:
        """The finest round bucket that keeps the time axis under ~90 points."""
        if not self.records:
            return _BUCKETS[0]
        span = max(r.timestamp for r in self.records) - min(r.timestamp for r in self.records)
        return next((b for b in _BUCKETS if span / b <= _MAX_BUCKETS), _BUCKETS[-1])

    def cumulative_by_tenant(self) -> dict[str, list[tuple[datetime, float]]]:
        """Running spend per tenant at the end of every bucket (same x values for all)."""
        if not self.records:
            return {}
        size = self.bucket()
        first = min(r.timestamp for r in self.records)
        origin = datetime.fromtimestamp(
            math.floor(first.timestamp() / size.total_seconds()) * size.total_seconds(), tz=UTC
        )
        count = int((max(r.timestamp for r in self.records) - origin) / size) + 1
        per: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * count)
        for r in self.records:
            per[r.tenant_id][int((r.timestamp - origin) / size)] += r.total_cost_usd
        out: dict[str, list[tuple[datetime, float]]] = {}
        for tenant in sorted(per):
            running, points = Decimal(0), [(origin, 0.0)]
            for i, amount in enumerate(per[tenant]):
                running += amount
                points.append((origin + size * (i + 1), float(running)))
            out[tenant] = points
        return out


def percentile(samples: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        stamp = value
    else:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _record(raw: dict[str, Any]) -> UsageRecord:
    return UsageRecord(
        timestamp=_parse_time(raw["timestamp"]),
        provider=str(raw.get("provider", "")),
        tenant_id=str(raw.get("tenant_id", "")),
        agent_id=str(raw.get("agent_id", "")),
        model_id=str(raw.get("model_id", "")),
        input_tokens=int(raw.get("input_tokens", 0)),
        output_tokens=int(raw.get("output_tokens", 0)),
        total_cost_usd=parse_usd(raw.get("total_cost_usd", "0"), "total_cost_usd"),
    )


def read_records(tracker: Any, start: datetime | None, end: datetime | None) -> list[UsageRecord]:
    """All ledger records in the range, via the tracker's own JSON export."""
    fd, path = tempfile.mkstemp(prefix="greenlang-report-", suffix=".json")
    os.close(fd)
    try:
        tracker.export_json(path, start_date=start, end_date=end)
        with open(path, encoding="utf-8") as fh:
            payload = json.load(fh)
    finally:
        os.unlink(path)
    rows = payload.get("records", []) if isinstance(payload, dict) else payload
    return sorted((_record(r) for r in rows), key=lambda r: r.timestamp)


def budget_configs(tracker: Any) -> Mapping[str, Mapping[str, Any]] | None:
    """``tracker.list_budgets()``, or None for a tracker without it. Read it once per report:
    it lists every tenant, so calling it for each tenant made a report quadratic in tenants."""
    lister = getattr(tracker, "list_budgets", None)
    if not callable(lister):
        return None
    configs: Mapping[str, Mapping[str, Any]] = lister()
    return configs


def budget_row(
    tracker: Any,
    tenant: str,
    run: RunInfo | None = None,
    *,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
) -> BudgetRow | None:
    """The tenant's budget as the tracker sees it now, or None when it has none.

    ``configs`` is :func:`budget_configs` read once by a caller that asks for many tenants;
    without it the tracker's budgets are listed for this one call.
    """
    try:
        status = tracker.check_budget(tenant)
    except KeyError:
        return None
    if configs is None:
        configs = budget_configs(tracker)
    limit, spent, thresholds = _budget_config(tracker, tenant, status, configs)
    if run is not None:
        limit = run.limits.get(tenant, limit)
        thresholds = run.thresholds.get(tenant, thresholds)
    level = status.alert_level if status.alert_triggered else None
    return BudgetRow(
        tenant_id=tenant,
        limit_usd=limit,
        spent_usd=spent,
        percentage_used=float(status.percentage_used),
        remaining_usd=float(status.remaining_usd),
        projected_monthly_usd=float(status.projected_monthly_cost),
        thresholds=tuple(thresholds),
        alert_level=float(level) if level is not None else None,
    )


def _budget_config(
    tracker: Any, tenant: str, status: Any, configs: Mapping[str, Mapping[str, Any]] | None
) -> tuple[float, float, tuple[float, ...]]:
    """Limit, month-to-date spend and thresholds: from the tracker when it tells, else derived."""
    thresholds: tuple[float, ...] = (0.8, 0.9, 1.0)
    if configs is not None:
        config = configs.get(tenant) or {}
        thresholds = tuple(float(t) for t in config.get("alert_thresholds", thresholds))
    pct = float(status.percentage_used)
    limit = getattr(status, "limit_usd", None)
    spent = getattr(status, "spent_usd", None)
    if limit and spent is not None:
        return float(limit), float(spent), thresholds
    remaining = float(status.remaining_usd)
    if pct > 0:
        month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        spent = float(tracker.get_summary(start_date=month_start, tenant_id=tenant).total_cost_usd)
        limit = spent * 100 / pct if spent > 0 else remaining / max(1e-12, 1 - pct / 100)
    else:
        spent, limit = 0.0, remaining
    return float(limit), float(spent), thresholds


def collect_report_data(
    tracker: Any,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    tenant_id: str | None = None,
    run: RunInfo | None = None,
    budget_tenants: Iterable[str] = (),
) -> ReportData:
    records = read_records(tracker, start, end)
    if tenant_id is not None:
        records = [r for r in records if r.tenant_id == tenant_id]
    tenants = {r.tenant_id for r in records} | set(budget_tenants)
    if run is not None:
        tenants |= set(run.limits)
    if tenant_id is not None:
        tenants = {tenant_id}
    configs = budget_configs(tracker)
    budgets = [b for t in sorted(tenants) if (b := budget_row(tracker, t, run, configs=configs)) is not None]
    return ReportData(
        generated_at=datetime.now(UTC),
        start=start,
        end=end,
        tenant_id=tenant_id,
        records=records,
        budgets=budgets,
        run=run,
    )
