"""LLMRouter: one call, several providers, failover, breakers, health and metrics.

A call reads straight down: ``_plan`` picks the providers that may be called now
(breaker admits; healthy ones first, monitor-flagged ones as a last resort) and
the strategy orders them; a :class:`~greenlang_llm.failover.FailoverChain` walks
that order, one upstream attempt per provider, and its table decides what each
failure means. Budgets, all enforced by the chain:

- ``max_retries`` extra upstream attempts across providers (a provider is never
  tried twice in one call), so at most ``max_retries + 1`` provider calls;
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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._errors import AllProvidersFailedError, CircuitBreakerOpenError, ProviderError
from ._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk, TokenUsage
from .circuit_breaker import BreakerStateStore, BreakerTicket, CircuitBreaker, CircuitState, Transition
from .failover import (
    AllCircuitsOpenError,
    AllProvidersRateLimitedError,
    FailoverChain,
    RouteEntry,
    Verdict,
    decide,
    within,
)
from .providers.base_provider import BaseLLMProvider
from .retry import Backoff, _asyncio_sleep
from .strategies import RoutingStrategy, Strategy, make_strategy, parse_strategy
from .stream_call import ContinuationHook, StreamCall

__all__ = ["AllCircuitsOpenError", "AllProvidersRateLimitedError", "LLMRouter", "RoutingStrategy"]

logger = logging.getLogger(__name__)


class LLMRouter:
    """Routes requests over registered providers; see the module docstring."""

    def __init__(
        self,
        strategy: RoutingStrategy | str = RoutingStrategy.PRIORITY,
        health_check_interval: float = 30.0,
        enable_circuit_breaker: bool = True,
        circuit_breaker_threshold: int = 5,
        circuit_breaker_timeout: float = 60.0,
        max_retries: int = 3,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        rng: random.Random | None = None,
        health_check_timeout: float = 10.0,
        breaker_store: Callable[[str, int, float], BreakerStateStore] | None = None,
        continue_on_failure: bool = True,
        same_provider_retries: int = 0,
        retry_backoff: Backoff | None = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not health_check_interval > 0:
            raise ValueError(f"health_check_interval must be > 0 seconds, got {health_check_interval!r}")
        self.strategy = parse_strategy(strategy)
        self.health_check_interval = float(health_check_interval)
        self.enable_circuit_breaker = enable_circuit_breaker
        self.circuit_breaker_threshold = circuit_breaker_threshold
        self.circuit_breaker_timeout = circuit_breaker_timeout
        self.max_retries = max_retries
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
        """``store(provider name, threshold, timeout)``: where breaker state lives (shared by replicas)."""
        self._clock = clock
        self._sleep = sleep
        self._strategy: Strategy = make_strategy(self.strategy, rng)
        self._entries: list[RouteEntry] = []
        self._by_name: dict[str, RouteEntry] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._total = self._succeeded = self._failed = self._cancelled = self._failovers = 0
        self._cost_nanos = 0
        """Total spend in nano-dollars: exact integer sums, no ``Decimal`` per call."""
        self.breaker_transitions: list[tuple[str, Transition]] = []
        """Every breaker state change, as (provider name, transition), oldest first."""

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
            breaker = CircuitBreaker(
                self.circuit_breaker_threshold, self.circuit_breaker_timeout, clock=self._clock,
                name=name, on_transition=self._transition_logger(name),
                store=self._breaker_store(name, self.circuit_breaker_threshold, self.circuit_breaker_timeout)
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

    def _chain(self, request: GenerationRequest) -> FailoverChain:
        return FailoverChain(self._plan(request), self.max_retries, request.timeout, self._clock,
                             self.same_provider_retries, self._retry_backoff, self._rng)

    def _next(self, chain: FailoverChain) -> tuple[RouteEntry, BreakerTicket | None] | None:
        step = chain.next()
        if step is not None and chain.attempts > 1 and not chain.retrying:
            self._failovers += 1
        return step

    def _plan(self, request: GenerationRequest) -> list[RouteEntry]:
        entries = self._entries
        if not entries:
            raise AllProvidersFailedError("no providers are registered with the router")
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
        self._total += 1
        try:
            chain = self._chain(request)
        except ProviderError:
            self._failed += 1
            raise
        while (step := self._next(chain)) is not None:
            entry, ticket = step
            started = self._clock()
            left = chain.remaining()
            try:
                if left is None:  # no deadline: await the provider itself, no wrapper coroutine
                    response = await entry.provider.generate(request)
                else:
                    response = await within(entry.provider.generate(request), left)
            except asyncio.CancelledError:
                self._cancelled += 1
                if ticket is not None:
                    ticket.release()
                raise
            except Exception as raw:
                final = self._attempt_failed(chain, entry, ticket, raw)
                if final is raw:
                    raise
                if isinstance(final, Exception):
                    raise final from raw
                if final is not None:
                    await self._sleep(final)
                continue
            if ticket is not None:
                ticket.success()
            self._record_success(entry, started, response.usage)
            response.provider = entry.name
            return response
        self._failed += 1
        raise chain.exhausted()

    def _attempt_failed(self, chain: FailoverChain, entry: RouteEntry, ticket: BreakerTicket | None,
                        raw: Exception) -> Exception | float | None:
        """Book a failed attempt: the exception to raise now, seconds to wait before the same
        provider again, or None to fail over."""
        error, cut = chain.normalise(raw, entry)
        if not isinstance(error, ProviderError) and decide(error) is Verdict.RETURN:
            # A bug in a provider is not an outage: surface it unchanged, no verdict.
            entry.errors[type(error).__name__] += 1
            if ticket is not None:
                ticket.release()
            final: Exception | float | None = error
        else:
            final = chain.failed(entry, ticket, error, cut)
        if isinstance(final, Exception):
            self._failed += 1
        return final

    def _record_success(self, entry: RouteEntry, started: float, usage: TokenUsage | None) -> None:
        self._cost_nanos += entry.succeeded((self._clock() - started) * 1000.0, usage)
        self._succeeded += 1

    async def stream(
        self, request: GenerationRequest, *, before_continuation: ContinuationHook | None = None
    ) -> AsyncIterator[StreamChunk]:
        """Chunks from the first provider that starts answering; a cut is continued (continuation.py).

        ``before_continuation(provider, continuation_request)`` is consulted before each
        continuation attempt (e.g. to reserve its extra cost against a hard budget); if it
        raises, the continuation is not attempted and the stream ends with
        ``StreamInterruptedError`` (see stream_call.py)."""
        self._total += 1
        try:
            chain = self._chain(request)
        except ProviderError:
            self._failed += 1
            raise
        relay = StreamCall(self, chain, request, before_continuation).run()
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
        """The seed's keys (DESIGN.md), plus failures, health and breaker history."""
        providers: dict[str, dict[str, Any]] = {}
        for e in self._entries:
            breaker = e.breaker
            providers[e.name] = {
                "total_requests": e.attempts,
                "success_rate": 100.0 * e.successes / e.attempts if e.attempts else 0.0,
                "avg_latency_ms": e.latency_total_ms / e.successes if e.successes else 0.0,
                "total_cost_usd": e.cost_nanos / 1e9,
                "circuit_breaker_state": (breaker.state if breaker else CircuitState.CLOSED).value,
                "successful_requests": e.successes,
                "failed_requests": e.failures,
                "errors_by_type": dict(e.errors),
                "healthy": e.healthy,
                "priority": e.priority,
                "latency_ewma_ms": e.latency_ewma_ms,
                "circuit_breaker_opened": breaker.transition_counts[CircuitState.OPEN] if breaker else 0,
            }
        return {
            "global": {
                "total_requests": self._total,
                "successful_requests": self._succeeded,
                "failed_requests": self._failed,
                "failover_count": self._failovers,
                "total_cost_usd": self._cost_nanos / 1e9,
                "cancelled_requests": self._cancelled,
                "strategy": self.strategy.value,
            },
            "providers": providers,
        }

