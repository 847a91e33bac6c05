"""What a router knows: one :class:`RouteEntry` per registered provider, and :class:`RouterStats`.

Both are plain bookkeeping, written only between awaits on one event loop (no
locks). A router call never touches them directly: its
:class:`~greenlang_llm.failover.FailoverChain` books every attempt's outcome here
(an attempt, a success with its latency and cost, a failure by error class, a
cancellation), so plain and streamed calls count the same way. ``get_metrics()``
reads them.

Costs are integer nano-dollars (``money.py``): a sum of ints is exact, and a
``Decimal`` per call cost about 3% of a routed call's CPU.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from ._types import ProviderHealth, TokenUsage
from .circuit_breaker import CircuitBreaker
from .money import float_usd_to_nanos, nanos_to_decimal
from .providers.base_provider import BaseLLMProvider

__all__ = ["LATENCY_EWMA_ALPHA", "RouteEntry", "RouterStats", "context_window_of"]

LATENCY_EWMA_ALPHA = 0.3
"""Weight of the newest observation in LEAST_LATENCY's moving average."""


@dataclass(eq=False, slots=True)
class RouterStats:
    """The router's totals over every call (``get_metrics()['global']``)."""

    total: int = 0
    """Router calls (a failover or retry inside one call is not a new call)."""
    succeeded: int = 0
    failed: int = 0
    """Calls that ended by raising an exception (cancellations are counted apart)."""
    cancelled: int = 0
    """Attempts whose caller went away (cancelled, or stopped reading a stream)."""
    failovers: int = 0
    """Steps to another provider within a call (same-provider retries are not failovers)."""
    cost_nanos: int = 0
    """Total spend in nano-dollars."""


@dataclass(eq=False, slots=True)
class RouteEntry:
    """One registered provider and everything the router learned about it."""

    name: str
    provider: BaseLLMProvider
    priority: int
    order: int
    breaker: CircuitBreaker | None
    healthy: bool = True
    last_health: ProviderHealth | None = None
    attempts: int = 0
    successes: int = 0
    failures: int = 0
    """Failed attempts that say something about the provider (outages, timeouts, auth)."""
    refusals: int = 0
    """Attempts the provider answered with a client error (content filter, context length, bad
    request): a decision about the request, not an outage, so neither a failure nor a breaker count."""
    latency_total_ms: float = 0.0
    latency_ewma_ms: float | None = None
    cost_nanos: int = 0
    """Spend on this provider in nano-dollars."""
    errors: Counter[str] = field(default_factory=Counter)
    rejects_prefill: bool = False
    """Learned: this provider answered 400 to an assistant prefill, so it never continues a stream."""
    _window: int | None = None
    _window_known: bool = False

    @property
    def cost(self) -> Decimal:
        """Spend on this provider in USD, exact."""
        return nanos_to_decimal(self.cost_nanos)

    def context_window(self) -> int | None:
        """Looked up on first need (a context-window error), so registering stays cheap."""
        if not self._window_known:
            self._window = context_window_of(self.provider)
            self._window_known = True
        return self._window

    def succeeded(self, elapsed_ms: float, usage: TokenUsage | None) -> int:
        """Book a success; returns the cost it added, in nano-dollars (for the router's total)."""
        self.successes += 1
        self.latency_total_ms += elapsed_ms
        ewma = self.latency_ewma_ms
        self.latency_ewma_ms = elapsed_ms if ewma is None else (
            LATENCY_EWMA_ALPHA * elapsed_ms + (1 - LATENCY_EWMA_ALPHA) * ewma)
        if usage is not None and usage.total_cost_usd:
            cost = float_usd_to_nanos(usage.total_cost_usd)
            self.cost_nanos += cost
            return cost
        return 0


def context_window_of(provider: BaseLLMProvider) -> int | None:
    """The model's context window: a provider attribute, else the price catalog, else unknown."""
    window = getattr(provider, "context_window", None)
    if isinstance(window, int) and window > 0:
        return window
    try:
        from .pricing import context_window  # lazy: the catalog is heavy

        found = context_window(provider.name, provider.model_id)
    except Exception:
        return None
    return found if isinstance(found, int) and found > 0 else None
