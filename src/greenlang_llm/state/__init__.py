"""Fast shared state for budgets: month-to-date spend and reservations.

``BudgetState`` is the interface; ``InProcessBudgetState`` the embedded
default. ``RedisBudgetState`` (``state.redis_state``) implements the same
interface for several gateway replicas, with the limits, breakers and provider
rate limits they share in the other ``redis_*`` modules; it is imported from
there, so this package does not load the Redis client.
"""

from __future__ import annotations

from .base import BudgetState, SettleOutcome
from .forecast import project_month_nanos
from .memory import InProcessBudgetState

__all__ = ["BudgetState", "InProcessBudgetState", "SettleOutcome", "project_month_nanos"]
