"""The public budget types ``CostTracker`` returns (re-exported by ``greenlang_llm.cost_tracker``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["BudgetStatus", "Reservation"]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    percentage_used: float
    """Spend / limit * 100; above 100 shows the overshoot."""
    remaining_usd: float
    """Limit minus spend, never below 0."""
    projected_monthly_cost: float
    """This month's spend extrapolated to its end, recent days weighted (docs/costs.md)."""
    alert_triggered: bool
    alert_level: float | None
    """The highest threshold reached this period, or None."""
    tenant_id: str = ""
    limit_usd: float = 0.0
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    hard_limit: bool = False
    period_start: datetime | None = None
    """Start of the calendar month (UTC) the spend counts; None when budgets never reset."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held against a hard budget until ``commit`` or ``release`` (or its TTL passes)."""

    id: str
    tenant_id: str
    amount_usd: float
    created_at: datetime
    dims: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    enforced: bool = True
    """False for tenants without a hard budget: a no-op reservation that holds nothing."""
