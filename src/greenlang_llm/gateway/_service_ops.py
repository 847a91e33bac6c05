"""What runs beside the requests: warm-up, budget alerts, admin views, health probes, shutdown.

Split from ``service.py`` (``GatewayService`` inherits ``ServiceOps``) so that module
reads as the request path alone. Nothing here runs per request: these are called at
start, by the admin API and metrics, from a budget alert, or at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._types import GenerationRequest

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker
    from ..providers.base_provider import BaseLLMProvider
    from ..state.redis_shared import SharedState
    from ._service_setup import Target
    from .config import GatewayConfig
    from .ledger_writer import LedgerWriter

__all__ = ["ServiceOps"]

logger = logging.getLogger("greenlang_llm.gateway.service")


class ServiceOps:
    """The non-request half of ``GatewayService``; its ``__init__`` sets every attribute below."""

    config: GatewayConfig
    providers: dict[str, BaseLLMProvider]
    targets: dict[str, Target]
    tracker: CostTracker
    ledger: LedgerWriter
    shared: SharedState | None
    closed: bool
    _alert_hooks: list[Callable[[str, float, float], None]]
    _monitor_start: asyncio.Task[None] | None

    # ------------------------------------------------------------------ ledger

    @property
    def pending_writes(self) -> int:
        return self.ledger.pending

    async def drain(self) -> None:
        """Wait until every queued ledger write has landed."""
        await self.ledger.drain()

    # ------------------------------------------------------------------ start-up

    def warm(self, freeze_gc: bool = False) -> None:
        """Load what the first request would load (price catalog, tokenizers); optionally freeze the heap.

        Both matter for tail latency: the catalog takes ~0.2 s to load, and once loaded a full
        garbage collection walks its objects (~20 ms on a small machine). ``gc.freeze()`` moves
        everything alive after start-up out of the collector's sight, so those pauses never
        land on a request. Freezing is process-wide, so only the process owner (``serve``)
        asks for it; an app embedded in tests or another server does not.
        """
        import gc

        probe = GenerationRequest(prompt="warm up", max_tokens=1)
        for provider in self.providers.values():
            try:
                provider.estimate_cost(probe)
                provider.count_tokens(probe)
            except Exception:
                logger.debug("warm-up of a provider failed", exc_info=True)
        if freeze_gc:
            gc.collect()
            gc.freeze()

    # ------------------------------------------------------------------ alerts

    def add_alert_hook(self, hook: Callable[[str, float, float], None]) -> None:
        self._alert_hooks.append(hook)

    def _on_alert(self, tenant_id: str, threshold: float, current_cost: float) -> None:
        logger.warning(
            "budget alert: tenant %s reached %.0f%% (%.6f USD)", tenant_id, threshold * 100, current_cost
        )
        for hook in self._alert_hooks:
            try:
                hook(tenant_id, threshold, current_cost)
            except Exception:
                logger.exception("budget alert hook failed")

    # ------------------------------------------------------------------ views

    def breaker_states(self) -> list[tuple[str, str, str]]:
        rows = []
        for name, target in self.targets.items():
            providers = target.router.get_metrics().get("providers", {})
            for pname, data in providers.items():
                rows.append((name, pname, str(data.get("circuit_breaker_state", "closed"))))
        return rows

    def budget_rows(self) -> list[tuple[str, float, float]]:
        rows = []
        for budget in self.config.budgets:
            try:
                status = self.tracker.check_budget(budget.tenant)
            except KeyError:
                continue
            spent = getattr(status, "spent_usd", budget.monthly_limit_usd * status.percentage_used / 100.0)
            rows.append((budget.tenant, spent, budget.monthly_limit_usd))
        return rows

    # ------------------------------------------------------------------ lifecycle

    async def start_health_monitoring(self, delay: float | None = None) -> None:
        """After ``delay`` (default: one ``health_check_interval``), each router probes its providers
        every interval (0: never); ``close`` stops them.

        A failed probe makes a provider a last resort on that route until a probe succeeds; the
        breakers still judge real calls. The first round waits one interval: at start every
        provider is presumed healthy, and replicas restarting together do not probe at once."""
        interval = self.config.server.health_check_interval
        if interval <= 0 or self.closed or self._monitor_start is not None:
            return

        async def start() -> None:
            await asyncio.sleep(interval if delay is None else delay)
            for target in self.targets.values():
                await target.router.start_health_monitoring()

        self._monitor_start = asyncio.get_running_loop().create_task(start(), name="gateway-health-start")

    async def close(self, drain_timeout: float = 30.0) -> None:
        """Flush the ledger, close routers and providers; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.drain(), drain_timeout)
        except TimeoutError:
            logger.error("shutdown: %d ledger writes still pending", self.ledger.pending)
        if self._monitor_start is not None:
            self._monitor_start.cancel()
        for target in self.targets.values():  # routers share providers: close each provider once, below
            try:
                await target.router.stop_health_monitoring()
            except Exception:
                logger.warning("stopping health monitoring failed", exc_info=True)
        for provider in self.providers.values():
            try:
                await provider.close()
            except Exception:
                logger.warning("provider close failed", exc_info=True)
        self.ledger.close()
        await asyncio.to_thread(self.tracker.close)
        if self.shared is not None:
            self.shared.close()
