"""LLMRouter: one call, several providers, failover, breakers, health and metrics.

A call reads straight down: ``_plan`` picks the providers that may be called now
(breaker admits; healthy ones first, monitor-flagged ones as a last resort) and
the strategy orders them; a :class:`~greenlang_llm.failover.FailoverChain` walks
that order, one upstream attempt per provider, decides what each failure means
(a typed ``RetrySame`` / ``FailOver`` / ``GiveUp``) and books every outcome in
the router's :class:`~greenlang_llm.router_stats.RouterStats` and per-provider
:class:`~greenlang_llm.router_stats.RouteEntry`. ``generate`` below and a stream
(``stream_call.StreamCall``) drive the same chain. Budgets, all enforced by the
chain:

- ``max_failovers`` extra upstream attempts across providers (a provider is never
  tried twice in one call, except by ``same_provider_retries``), so at most
  ``max_failovers + 1`` providers per call. The original API called it
  ``max_retries``, which is still accepted (deprecated: a provider's own
  ``max_retries`` counts retries of the same provider, which this is not);
- the request's ``timeout`` caps the whole chain;
- an all-open router fails at once with ``AllProvidersFailedError`` (also a
  ``CircuitBreakerOpenError``) carrying the soonest recovery as ``retry_after``.

Streams may fail over until the first chunk with content is handed to the
caller; after that an upstream failure raises ``StreamInterruptedError`` with
the text already delivered. There is no lock around provider calls: all
bookkeeping is synchronous code between awaits on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._errors import (
    AllCircuitsOpenError,
    AllProvidersFailedError,
    AllProvidersRateLimitedError,
    CircuitBreakerOpenError,
    ProviderError,
    UnsupportedParamsError,
)
from ._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk
from .capability import able_to_serve
from .circuit_breaker import (
    DEFAULT_BASE_TIMEOUT,
    BreakerStoreFactory,
    CircuitBreaker,
    CircuitState,
    Transition,
)
from .failover import FailoverChain, GiveUp, RetrySame, within
from .money import nanos_to_usd
from .providers.base_provider import BaseLLMProvider
from .retry import Backoff, _asyncio_sleep
from .router_stats import RouteEntry, RouterStats
from .strategies import RoutingStrategy, Strategy, make_strategy
from .stream_call import ContinuationHook, StreamCall

# RoutingStrategy: the original package imported it from here; the two errors were first exported here
__all__ = ["AllCircuitsOpenError", "AllProvidersRateLimitedError", "LLMRouter", "RoutingStrategy"]

logger = logging.getLogger(__name__)


class LLMRouter:
    """Routes requests over registered providers; see the module docstring."""

    def __init__(
        self,
        strategy: RoutingStrategy | str | Strategy = RoutingStrategy.PRIORITY,
        health_check_interval: float = 30.0,
        enable_circuit_breaker: bool = True,
        circuit_breaker_threshold: int = 5,
        circuit_breaker_timeout: float = 60.0,
        max_failovers: int = 3,
        *,
        max_retries: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        rng: random.Random | None = None,
        health_check_timeout: float = 10.0,
        breaker_store: BreakerStoreFactory | None = None,
        circuit_breaker_base_timeout: float = DEFAULT_BASE_TIMEOUT,
        continue_on_failure: bool = True,
        same_provider_retries: int = 0,
        retry_backoff: Backoff | None = None,
    ) -> None:
        if max_retries is not None:
            warnings.warn(
                "LLMRouter(max_retries=...) is deprecated: it counts extra providers, so it is now "
                "called max_failovers", DeprecationWarning, stacklevel=2)
            max_failovers = max_retries
        if isinstance(max_failovers, bool) or not isinstance(max_failovers, int) or max_failovers < 0:
            name = "max_retries" if max_retries is not None else "max_failovers"
            raise ValueError(f"{name} must be an integer >= 0, got {max_failovers!r}")
        if not health_check_interval > 0:
            raise ValueError(f"health_check_interval must be > 0 seconds, got {health_check_interval!r}")
        self._strategy: Strategy = (
            strategy if isinstance(strategy, Strategy) else make_strategy(strategy, rng))
        self.strategy: RoutingStrategy | Strategy = self._strategy.kind or self._strategy
        """The built-in strategy's enum member, or the ``Strategy`` object given."""
        self.health_check_interval = float(health_check_interval)
        self.enable_circuit_breaker = enable_circuit_breaker
        self.circuit_breaker_threshold = circuit_breaker_threshold
        self.circuit_breaker_timeout = circuit_breaker_timeout
        if not circuit_breaker_base_timeout > 0:
            raise ValueError(
                f"circuit_breaker_base_timeout must be > 0 seconds, got {circuit_breaker_base_timeout!r}")
        self.circuit_breaker_base_timeout = circuit_breaker_base_timeout
        """An open breaker's first wait; each failed trial adds it, up to ``circuit_breaker_timeout``."""
        self.max_failovers = max_failovers
        self.health_check_timeout = health_check_timeout
        if isinstance(same_provider_retries, bool) or not isinstance(same_provider_retries, int) \
                or same_provider_retries < 0:
            raise ValueError(f"same_provider_retries must be an integer >= 0, got {same_provider_retries!r}")
        self.continue_on_failure = bool(continue_on_failure)
        """Finish a stream cut after its first text on the next provider (see continuation.py)."""
        self.same_provider_retries = same_provider_retries
        """RETRY rows of the failover table: how often one call may retry the same provider."""
        self._retry_backoff = retry_backoff or Backoff(0.5, 4.0)
        self._rng = rng
        self._breaker_store = breaker_store
        """``store(name, threshold, timeout, base)``: where breaker state lives (shared by replicas)."""
        self._clock = clock
        self._sleep = sleep
        self._entries: list[RouteEntry] = []
        self._by_name: dict[str, RouteEntry] = {}
        self._monitor: asyncio.Task[None] | None = None
        self.stats = RouterStats()
        """Totals over every call; ``get_metrics()['global']`` reports them."""
        self.breaker_transitions: list[tuple[str, Transition]] = []
        """Every breaker state change, as (provider name, transition), oldest first."""

    @property
    def max_retries(self) -> int:
        """Deprecated name of :attr:`max_failovers` (the original API's); setting it warns."""
        return self.max_failovers

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        warnings.warn("LLMRouter.max_retries is deprecated: it is now called max_failovers",
                      DeprecationWarning, stacklevel=2)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {value!r}")
        self.max_failovers = value

    # -- registration ------------------------------------------------------------------
    def register_provider(self, name: str, provider: BaseLLMProvider, priority: int = 1) -> None:
        """Add ``provider`` under ``name`` (the name responses and metrics report)."""
        if not isinstance(name, str) or not name:
            raise ValueError("provider name must be a non-empty string")
        if name in self._by_name:
            raise ValueError(f"a provider named {name!r} is already registered; names must be unique")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority must be an integer, got {priority!r}")
        if not callable(getattr(provider, "generate", None)):
            raise TypeError(f"provider for {name!r} must be a BaseLLMProvider, got {type(provider).__name__}")
        breaker = None
        if self.enable_circuit_breaker:
            threshold, cap = self.circuit_breaker_threshold, self.circuit_breaker_timeout
            base = self.circuit_breaker_base_timeout
            breaker = CircuitBreaker(
                threshold, cap, clock=self._clock, base_timeout=base,
                name=name, on_transition=self._transition_logger(name),
                store=self._breaker_store(name, threshold, cap, base)
                if self._breaker_store is not None else None,
            )
        entry = RouteEntry(name, provider, priority, len(self._entries), breaker)
        self._entries.append(entry)
        self._by_name[name] = entry

    def _transition_logger(self, name: str) -> Callable[[Transition], None]:
        def note(transition: Transition) -> None:
            self.breaker_transitions.append((name, transition))

        return note

    @property
    def providers(self) -> dict[str, BaseLLMProvider]:
        return {e.name: e.provider for e in self._entries}

    def circuit_breaker(self, name: str) -> CircuitBreaker | None:
        return self._by_name[name].breaker

    def _begin(self, request: GenerationRequest) -> FailoverChain:
        """Count a new call and plan its walk (a call refused by the plan is a failed call)."""
        self.stats.total += 1
        try:
            order = self._plan(request)
        except ProviderError:
            self.stats.failed += 1
            raise
        return FailoverChain(order, self.max_failovers, request.timeout, self._clock, self._sleep,
                             self.stats, self.same_provider_retries, self._retry_backoff, self._rng)

    def _plan(self, request: GenerationRequest) -> list[RouteEntry]:
        entries = self._entries
        if not entries:
            raise AllProvidersFailedError("no providers are registered with the router")
        if request.rich:  # tools, images, hints...: only the providers able to serve it as asked
            entries = able_to_serve(entries, request)
        # the usual call has every breaker closed and every provider healthy: one list, and the
        # refused/last-resort lists only when something is in them
        healthy: list[RouteEntry] = []
        last_resort: list[RouteEntry] | None = None
        refused: list[tuple[str, BaseException]] | None = None
        for entry in entries:
            breaker = entry.breaker
            if breaker is not None and not breaker.is_available():
                if refused is None:
                    refused = []
                refused.append((entry.name, CircuitBreakerOpenError(
                    retry_after=breaker.retry_after(), provider=entry.name)))
            elif entry.healthy:
                healthy.append(entry)
            elif last_resort is None:
                last_resort = [entry]
            else:
                last_resort.append(entry)
        if not healthy and last_resort is None:
            assert refused is not None
            soonest = min(getattr(e, "retry_after", 0.0) for _, e in refused)
            raise AllCircuitsOpenError(
                f"every circuit breaker is open; the first recovers in {soonest:.1f}s", refused, soonest)
        return self._strategy.order((healthy, last_resort or ()), request)

    # -- calls -----------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        """The first success along the strategy's order; ``.provider`` is the registered name."""
        chain = self._begin(request)
        while (step := chain.next()) is not None:
            entry, ticket = step
            started = self._clock()
            left = chain.remaining()
            try:
                if left is None:  # no deadline: await the provider itself, no wrapper coroutine
                    response = await entry.provider.generate(request)
                else:
                    response = await within(entry.provider.generate(request), left)
            except asyncio.CancelledError:
                chain.cancelled(ticket)
                raise
            except Exception as raw:
                decision = chain.attempt_failed(entry, ticket, raw)
                if isinstance(decision, GiveUp):
                    decision.raise_from(raw)
                if isinstance(decision, RetrySame):
                    await self._sleep(decision.wait)
                continue
            chain.succeeded(entry, ticket, started, response.usage)
            response.provider = entry.name
            return response
        raise chain.exhausted()

    async def stream(
        self, request: GenerationRequest, *, before_continuation: ContinuationHook | None = None
    ) -> AsyncIterator[StreamChunk]:
        """Chunks from the first provider that starts answering; a cut is continued (continuation.py).

        ``before_continuation(provider, continuation_request)`` is consulted before each
        continuation attempt (e.g. to reserve its extra cost against a hard budget); if it
        raises, the continuation is not attempted and the stream ends with
        ``StreamInterruptedError`` (see stream_call.py). A stream carries one answer: ``n`` > 1
        is ``UnsupportedParamsError`` here (``generate`` serves it)."""
        if request.n is not None and request.n > 1:
            raise UnsupportedParamsError(
                "n > 1 is served without streaming only: a stream carries one answer (use generate).",
                fields=("n",))
        chain = self._begin(request)
        relay = StreamCall(chain, request, before_continuation, self.continue_on_failure).run()
        async with contextlib.aclosing(relay):
            async for chunk in relay:
                yield chunk

    # -- health ------------------------------------------------------------------------
    async def health_check_all(self) -> dict[str, ProviderHealth]:
        """Probe every provider concurrently; unhealthy ones become a last resort until healthy."""
        entries = list(self._entries)
        results = await asyncio.gather(*(self._check(e) for e in entries))
        return {e.name: h for e, h in zip(entries, results, strict=True)}

    async def _check(self, entry: RouteEntry) -> ProviderHealth:
        try:
            health = await within(entry.provider.health_check(), self.health_check_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # health_check should not raise; a broken one is unhealthy
            health = ProviderHealth(False, None, f"{type(error).__name__}: {error}"[:300])
        if health.is_healthy != entry.healthy:
            logger.log(logging.INFO if health.is_healthy else logging.WARNING,
                       "provider %s is now %s%s", entry.name,
                       "healthy" if health.is_healthy else "unhealthy",
                       f" ({health.last_error})" if health.last_error else "")
        entry.healthy = health.is_healthy
        entry.last_health = health
        return health

    async def start_health_monitoring(self) -> None:
        """Run ``health_check_all()`` now and every ``health_check_interval`` s; twice is harmless."""
        if self._monitor is not None and not self._monitor.done():
            return
        self._monitor = asyncio.get_running_loop().create_task(
            self._monitor_loop(), name="greenlang-llm-health-monitor")

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self.health_check_all()
            except Exception:  # keep monitoring whatever one round did
                logger.exception("health check round failed")
            await self._sleep(self.health_check_interval)

    async def stop_health_monitoring(self) -> None:
        task, self._monitor = self._monitor, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop monitoring and close every provider (each once, errors logged, not raised)."""
        await self.stop_health_monitoring()
        unique = list({id(e.provider): e for e in self._entries}.values())
        results = await asyncio.gather(*(e.provider.close() for e in unique), return_exceptions=True)
        for entry, result in zip(unique, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing provider %s failed: %r", entry.name, result)

    async def __aenter__(self) -> LLMRouter:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- metrics -----------------------------------------------------------------------
    def get_metrics(self) -> dict[str, Any]:
        """The original package's keys plus failures, health and breaker history (docs/routing.md#metrics)."""
        providers: dict[str, dict[str, Any]] = {}
        for e in self._entries:
            breaker = e.breaker
            providers[e.name] = {
                "total_requests": e.attempts,
                "success_rate": 100.0 * e.successes / e.attempts if e.attempts else 0.0,
                "avg_latency_ms": e.latency_total_ms / e.successes if e.successes else 0.0,
                "total_cost_usd": nanos_to_usd(e.cost_nanos),
                "circuit_breaker_state": (breaker.state if breaker else CircuitState.CLOSED).value,
                "successful_requests": e.successes,
                "failed_requests": e.failures,
                "refusals": e.refusals,
                "errors_by_type": dict(e.errors),
                "healthy": e.healthy,
                "priority": e.priority,
                "latency_ewma_ms": e.latency_ewma_ms,
                "circuit_breaker_opened": breaker.transition_counts[CircuitState.OPEN] if breaker else 0,
            }
        stats = self.stats
        return {
            "global": {
                "total_requests": stats.total,
                "successful_requests": stats.succeeded,
                "failed_requests": stats.failed,
                "failover_count": stats.failovers,
                "total_cost_usd": nanos_to_usd(stats.cost_nanos),
                "cancelled_requests": stats.cancelled,
                "strategy": self._strategy.name,
            },
            "providers": providers,
        }

