"""The budget state interface: month-to-date spend and open reservations.

The ledger is the source of truth for what was spent; this state is the fast
view ``check_budget`` and ``reserve`` read on every request (O(1), no SQL).
It is an interface so that replicas can share one view: the in-process
implementation serves a single process; a Redis implementation (planned for
multi-replica gateways) implements the same calls with atomic scripts —
``try_reserve`` as one compare-and-add, expiry as key TTLs.

Amounts are integer nano-dollars. ``period`` is an opaque key chosen by the
caller (``"2026-11"`` for a calendar month, ``"all"`` for a budget that never
resets); ``day`` is the day of the month, kept for the forecast.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["BudgetState", "SettleOutcome"]


class SettleOutcome(enum.Enum):
    OPEN = "open"
    """The reservation was open and is now being settled by this caller."""
    SETTLED = "settled"
    """It was already committed or released (or is being settled by someone else)."""
    UNKNOWN = "unknown"
    """Never seen, or expired and forgotten: usage is still recorded, nothing is freed."""


class BudgetState(ABC):
    in_process: bool = False
    """Every call is a memory operation in this process (no round trip to a shared store)."""

    # -- month-to-date spend ----------------------------------------------------------------------
    @abstractmethod
    def load_spend(self, totals: Mapping[tuple[str, str, int | None], int]) -> None:
        """Replace the spend view with totals rebuilt from the ledger: {(tenant, period, day): nanos}."""

    @abstractmethod
    def add_spend(self, tenant_id: str, period: str, nanos: int, day: int | None = None) -> int:
        """Add committed spend; return the period's new total."""

    def add_spend_many(self, items: Sequence[tuple[str, str, int, int | None]]) -> list[int]:
        """``add_spend`` for each (tenant, period, nanos, day), in order (a shared state: one trip).

        Returns each item's new period total, as ``add_spend`` does.
        """
        return [self.add_spend(tenant_id, period, nanos, day) for tenant_id, period, nanos, day in items]

    @abstractmethod
    def spend(self, tenant_id: str, period: str) -> int: ...

    @abstractmethod
    def daily_spend(self, tenant_id: str, period: str) -> dict[int, int]:
        """Spend per day of the period (only days with spend)."""

    # -- reservations ------------------------------------------------------------------------------
    @abstractmethod
    def try_reserve(
        self,
        reservation_id: str,
        tenant_id: str,
        period: str,
        amount: int,
        limit: int,
        now: float,
        ttl_s: float,
        dims: Mapping[str, Any] | None = None,
    ) -> bool:
        """Atomically hold ``amount`` if spend + open reservations + amount <= limit; False otherwise."""

    @abstractmethod
    def reserved(self, tenant_id: str, now: float) -> int:
        """Sum of the tenant's open (unexpired) reservations."""

    @abstractmethod
    def begin_settle(self, reservation_id: str) -> SettleOutcome:
        """Claim a reservation for commit; its amount stays held until ``finish_settle``."""

    @abstractmethod
    def finish_settle(
        self, reservation_id: str, tenant_id: str, period: str, nanos: int, day: int | None
    ) -> None:
        """In one step: add the actual spend and free the held amount (conservative: never both missing)."""

    @abstractmethod
    def abort_settle(self, reservation_id: str) -> None:
        """The commit failed before the usage was recorded: reopen the reservation."""

    @abstractmethod
    def release(self, reservation_id: str) -> bool:
        """Free an open reservation unused; False when it was not open (a no-op)."""

    def release_many(self, reservation_ids: Sequence[str]) -> list[bool]:
        """``release`` for each id, in order; a shared state does it in one round trip."""
        return [self.release(rid) for rid in reservation_ids]

    def bind_loader(self, loader: Callable[[], None]) -> None:
        """Give the state a way to rebuild itself from the ledger (``loader`` calls ``load_spend``).

        A shared state that can lose its data (Redis) calls it to rebuild; the in-process
        state never needs it.
        """

    def close(self) -> None:
        """Release connections (the in-process state has none)."""
