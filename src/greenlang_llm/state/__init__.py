"""Fast shared state for budgets: month-to-date spend and reservations.

``BudgetState`` is the interface; ``InProcessBudgetState`` the embedded
default. A Redis-backed implementation for several replicas will implement
the same interface.
"""

from __future__ import annotations

from .base import BudgetState, SettleOutcome
from .forecast import project_month_nanos
from .memory import InProcessBudgetState

__all__ = ["BudgetState", "InProcessBudgetState", "SettleOutcome", "project_month_nanos"]
