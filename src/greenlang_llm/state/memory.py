"""In-process budget state: dictionaries under one lock.

Correct for one process (threads and asyncio tasks calling through
``asyncio.to_thread`` alike); every check-and-hold happens under the lock, so
200 concurrent reservations cannot together pass a hard limit. Expired
reservations are dropped lazily when the tenant is next looked at.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import BudgetState, SettleOutcome

__all__ = ["InProcessBudgetState"]

_SETTLED_MEMORY = 100_000


@dataclass(slots=True)
class _Hold:
    tenant_id: str
    amount: int
    expires_at: float
    settling: bool = False
    dims: dict[str, Any] = field(default_factory=dict)


class InProcessBudgetState(BudgetState):
    in_process = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spend: dict[tuple[str, str], int] = {}
        self._daily: dict[tuple[str, str], dict[int, int]] = {}
        self._holds: dict[str, _Hold] = {}
        self._by_tenant: dict[str, set[str]] = {}
        self._settled: OrderedDict[str, None] = OrderedDict()

    def load_spend(self, totals: Mapping[tuple[str, str, int | None], int]) -> None:
        with self._lock:
            self._spend.clear()
            self._daily.clear()
            for (tenant, period, day), nanos in totals.items():
                self._add(tenant, period, nanos, day)

    def _add(self, tenant_id: str, period: str, nanos: int, day: int | None) -> int:
        key = (tenant_id, period)
        total = self._spend.get(key, 0) + nanos
        self._spend[key] = total
        if day is not None:
            days = self._daily.setdefault(key, {})
            days[day] = days.get(day, 0) + nanos
        return total

    def add_spend(self, tenant_id: str, period: str, nanos: int, day: int | None = None) -> int:
        with self._lock:
            return self._add(tenant_id, period, nanos, day)

    def spend(self, tenant_id: str, period: str) -> int:
        return self._spend.get((tenant_id, period), 0)

    def daily_spend(self, tenant_id: str, period: str) -> dict[int, int]:
        with self._lock:
            return dict(self._daily.get((tenant_id, period), {}))

    def _reserved(self, tenant_id: str, now: float) -> int:
        ids = self._by_tenant.get(tenant_id)
        if not ids:
            return 0
        total = 0
        for rid in list(ids):
            hold = self._holds[rid]
            if hold.expires_at <= now and not hold.settling:
                self._drop(rid)
            else:
                total += hold.amount
        return total

    def _drop(self, reservation_id: str) -> _Hold | None:
        hold = self._holds.pop(reservation_id, None)
        if hold is not None:
            ids = self._by_tenant[hold.tenant_id]
            ids.discard(reservation_id)
            if not ids:
                del self._by_tenant[hold.tenant_id]
        return hold

    def _remember(self, reservation_id: str) -> None:
        self._settled[reservation_id] = None
        if len(self._settled) > _SETTLED_MEMORY:
            self._settled.popitem(last=False)

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
        with self._lock:
            committed = self._spend.get((tenant_id, period), 0)
            if committed + self._reserved(tenant_id, now) + amount > limit:
                return False
            self._holds[reservation_id] = _Hold(tenant_id, amount, now + ttl_s, dims=dict(dims or {}))
            self._by_tenant.setdefault(tenant_id, set()).add(reservation_id)
            return True

    def reserved(self, tenant_id: str, now: float) -> int:
        with self._lock:
            return self._reserved(tenant_id, now)

    def begin_settle(self, reservation_id: str) -> SettleOutcome:
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is not None and not hold.settling:
                hold.settling = True
                return SettleOutcome.OPEN
            if hold is not None or reservation_id in self._settled:
                return SettleOutcome.SETTLED
            self._remember(reservation_id)
            return SettleOutcome.UNKNOWN

    def finish_settle(
        self, reservation_id: str, tenant_id: str, period: str, nanos: int, day: int | None
    ) -> None:
        with self._lock:
            self._add(tenant_id, period, nanos, day)
            self._drop(reservation_id)
            self._remember(reservation_id)

    def abort_settle(self, reservation_id: str) -> None:
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is not None:
                hold.settling = False

    def release(self, reservation_id: str) -> bool:
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is None or hold.settling:
                return False
            self._drop(reservation_id)
            self._remember(reservation_id)
            return True
