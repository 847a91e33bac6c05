"""The read side of ``CostTracker``: summaries, time series and exports over the ledger.

Split from ``cost_tracker.py`` (``CostTracker`` inherits ``CostReports``). Everything
here reads the durable ledger only, never the month-to-date budget state, and is
aggregated in SQL over integer nano-dollars; floats appear only in what is returned.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import TYPE_CHECKING

from ._cost_periods import check_tenant
from .ledger.base import DAY_US, HOUR_US
from .ledger.records import nanos_to_usd
from .ledger.reports import GRANULARITIES, CostSummary, bucket_series, resolve_range, write_csv, write_json

if TYPE_CHECKING:
    from .ledger import LedgerStorage

__all__ = ["CostReports"]


class CostReports:
    """Reports over ``_ledger`` (set by ``CostTracker.__init__``)."""

    _ledger: LedgerStorage

    def get_summary(
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

    def get_time_series(
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
        summary = self.get_summary(start_date, end_date, tenant).to_dict() if include_summary else None
        return write_json(path, self._ledger.iter_records(start_us, end_us, tenant_id=tenant), summary)
