"""Budget periods and the checks ``CostTracker`` shares between its halves.

Split from ``cost_tracker.py``: a usage counts toward the calendar month (UTC) of its
timestamp, or toward one never-ending period ``ALL`` when budgets do not reset; both
the tracking half (``cost_tracker.py``) and the reports half (``_cost_reports.py``)
validate a tenant the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._errors import InvalidRequestError

__all__ = ["ALL", "TRACK_KEYS", "check_tenant", "month_key", "month_start"]

ALL = "all"  # budget period key when budgets never reset
TRACK_KEYS = frozenset({"provider", "agent_id", "model_id", "request_id", "timestamp"})
"""Optional fields of one tracked usage (``track_many`` items, ``commit`` keywords)."""


def month_key(ts: datetime) -> str:
    return f"{ts.year:04d}-{ts.month:02d}"


def month_start(ts: datetime) -> datetime:
    return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def check_tenant(tenant_id: Any) -> str:
    """``tenant_id`` if it is a non-empty string; else the caller's mistake, named."""
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise InvalidRequestError(f"tenant_id must be a non-empty string, got {tenant_id!r}")
    return tenant_id
