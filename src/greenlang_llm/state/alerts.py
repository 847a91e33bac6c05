"""Budget alerts: each threshold fires once per tenant per period, in ascending order.

A threshold reached is first marked in memory (so concurrent writers queue it
once), then claimed in the ledger (``budget_alerts`` has a primary key on
tenant, period and threshold, so a restart or another process never fires it
again), then handed to the callbacks. One re-entrant dispatch lock drains the
queue in order, so alerts reach callbacks in ascending order even when writers
race; callbacks run outside the tracker's state lock and may call back into
it. A failing callback is logged and the others still run.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..money import nanos_to_usd

if TYPE_CHECKING:
    from ..ledger import LedgerStorage

__all__ = ["AlertCallback", "AlertDispatcher"]

log = logging.getLogger("greenlang_llm.cost_tracker")

AlertCallback = Callable[[str, float, float], Any]
"""``cb(tenant_id, threshold, current_cost_usd)``."""


class AlertDispatcher:
    def __init__(self, ledger: LedgerStorage) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._dispatch_lock = threading.RLock()
        self._callbacks: list[AlertCallback] = []
        self._queue: deque[tuple[str, float, int, str]] = deque()
        self._fired: dict[str, set[tuple[str, float]]] = {}

    def register(self, callback: AlertCallback) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def check(
        self, period: str, tenants: Iterable[tuple[str, int, Iterable[tuple[float, int]]]], now_us: int
    ) -> None:
        """``tenants``: (tenant, spent_nanos, ((threshold, threshold_nanos), ...) ascending)."""
        with self._lock:
            fired = self._fired.get(period)
            if fired is None:
                fired = self._fired[period] = self._ledger.fired_alerts(period)
            for tenant, spent, levels in tenants:
                for threshold, nanos in levels:
                    if spent >= nanos and (tenant, threshold) not in fired:
                        fired.add((tenant, threshold))
                        self._queue.append((tenant, threshold, spent, period))
            if not self._queue:
                return
        self._dispatch(now_us)

    def _dispatch(self, now_us: int) -> None:
        with self._dispatch_lock:
            while True:
                with self._lock:
                    if not self._queue:
                        return
                    tenant, threshold, spent, period = self._queue.popleft()
                    callbacks = list(self._callbacks)
                try:
                    if not self._ledger.claim_alert(tenant, period, threshold, now_us, spent):
                        continue  # already fired: by another process, or before a restart
                except Exception:  # still alert: a lost claim only risks a repeat after restart
                    log.exception(
                        "could not persist budget alert %s %s for tenant %r", period, threshold, tenant
                    )
                for callback in callbacks:
                    try:
                        callback(tenant, threshold, nanos_to_usd(spent))
                    except Exception:
                        log.exception("budget alert callback %r failed for tenant %r", callback, tenant)
