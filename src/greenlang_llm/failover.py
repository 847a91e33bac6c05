"""Failover: what the router does after a failed attempt, and the walk over candidates.

:class:`FailoverChain` is one router call's walk: one upstream attempt per
provider, at most ``max_retries + 1`` attempts, within the request's deadline.
After each failure it consults one table, first matching row wins. The router
never guesses from status codes: the error class (set once by
``error_from_http`` or by a provider) decides.

====================================  =========================  ===================================
error                                 verdict                    why
====================================  =========================  ===================================
ContentPolicyError                    RETURN                     a policy decision, not an outage
ContextWindowExceededError            FAILOVER_LARGER_CONTEXT    only a model with a larger window
                                                                 can take the same prompt
InvalidRequestError (400/404/413/422) RETURN                     the request is wrong everywhere
AuthenticationError (401/403)         RETURN                     a config error to fix, not route around
BudgetExceededError                   RETURN                     a refusal by our own policy
RateLimitError (any 429)              FAILOVER                   a limit or quota of *this* provider
other ProviderError                   FAILOVER if retryable,     5xx, 529, timeouts, resets
                                      else RETURN
TimeoutError, OSError                 FAILOVER                   transport failures
anything else                         RETURN                     a bug: never hidden by failover
====================================  =========================  ===================================

RETURN re-raises the original exception unchanged (its type is the caller's
``except`` clause). Retrying the same provider is the provider's own
``RetryPolicy``; per-class refinements (retry-after vs deadline, stalls) will
add rows here rather than ``if`` chains in the router.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from ._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from ._types import ProviderHealth, TokenUsage
from .circuit_breaker import BreakerTicket, CircuitBreaker
from .providers.base_provider import BaseLLMProvider

__all__ = [
    "FAILOVER_TABLE",
    "AllCircuitsOpenError",
    "AllProvidersRateLimitedError",
    "FailoverChain",
    "RouteEntry",
    "Verdict",
    "decide",
]

T = TypeVar("T")


class Verdict(Enum):
    RETURN = "return"
    FAILOVER = "failover"
    FAILOVER_LARGER_CONTEXT = "failover_larger_context"


_RETRYABLE = object()
"""Marker: the verdict follows the error's ``retryable`` flag."""

FAILOVER_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], object], ...] = (
    (ContentPolicyError, Verdict.RETURN),
    (ContextWindowExceededError, Verdict.FAILOVER_LARGER_CONTEXT),
    (InvalidRequestError, Verdict.RETURN),
    (AuthenticationError, Verdict.RETURN),
    (BudgetExceededError, Verdict.RETURN),
    (RateLimitError, Verdict.FAILOVER),
    (ProviderError, _RETRYABLE),
    ((TimeoutError, OSError), Verdict.FAILOVER),
)


def decide(error: BaseException) -> Verdict:
    """The verdict for ``error`` from :data:`FAILOVER_TABLE`."""
    for kinds, verdict in FAILOVER_TABLE:
        if isinstance(error, kinds):
            if verdict is _RETRYABLE:
                return Verdict.FAILOVER if getattr(error, "retryable", False) else Verdict.RETURN
            assert isinstance(verdict, Verdict)
            return verdict
    return Verdict.RETURN


LATENCY_EWMA_ALPHA = 0.3
"""Weight of the newest observation in LEAST_LATENCY's moving average."""


class AllCircuitsOpenError(AllProvidersFailedError, CircuitBreakerOpenError):  # type: ignore[misc]
    """Every breaker is open: refused without an upstream call. Catchable as either parent."""

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]] = (),
                 retry_after: float | None = None) -> None:
        AllProvidersFailedError.__init__(self, message, errors, retry_after)
        self.retry_after = retry_after  # the parents' constructors disagree on this slot
        self.retryable = True


class AllProvidersRateLimitedError(AllProvidersFailedError, RateLimitError):
    """Every attempt was rate-limited: ``except RateLimitError`` still catches it."""

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]] = (),
                 retry_after: float | None = None) -> None:
        AllProvidersFailedError.__init__(self, message, errors, retry_after)
        self.retry_after = retry_after
        self.status_code = 429


def money(value: float) -> Decimal:
    return Decimal(repr(float(value)))


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
    latency_total_ms: float = 0.0
    latency_ewma_ms: float | None = None
    cost: Decimal = field(default_factory=Decimal)
    errors: Counter[str] = field(default_factory=Counter)
    _window: int | None = None
    _window_known: bool = False

    def context_window(self) -> int | None:
        """Looked up on first need (a context-window error), so registering stays cheap."""
        if not self._window_known:
            self._window = context_window_of(self.provider)
            self._window_known = True
        return self._window

    def succeeded(self, elapsed_ms: float, usage: TokenUsage | None) -> None:
        self.successes += 1
        self.latency_total_ms += elapsed_ms
        ewma = self.latency_ewma_ms
        self.latency_ewma_ms = elapsed_ms if ewma is None else (
            LATENCY_EWMA_ALPHA * elapsed_ms + (1 - LATENCY_EWMA_ALPHA) * ewma)
        if usage is not None and usage.total_cost_usd:
            self.cost += money(usage.total_cost_usd)


def context_window_of(provider: BaseLLMProvider) -> int | None:
    """The model's context window: a provider attribute, else the price catalog, else unknown."""
    window = getattr(provider, "context_window", None)
    if isinstance(window, int) and window > 0:
        return window
    try:
        from . import pricing  # type: ignore[attr-defined,unused-ignore]

        lookup = getattr(pricing, "context_window", None)
        found = lookup(provider.name, provider.model_id) if callable(lookup) else None
    except Exception:
        return None
    return found if isinstance(found, int) and found > 0 else None


class FailoverChain:
    """One router call's walk over its candidates; see the module docstring for the budgets."""

    __slots__ = ("_clock", "_todo", "attempts", "deadline", "errors", "max_retries", "min_window")

    def __init__(self, order: Iterable[RouteEntry], max_retries: int, timeout: float | None,
                 clock: Callable[[], float]) -> None:
        self._clock = clock
        self.max_retries = max_retries
        self.deadline = None if timeout is None else clock() + timeout
        self._todo = iter(order)
        self.errors: list[tuple[str, BaseException]] = []
        self.attempts = 0
        self.min_window: int | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline

    def next(self) -> tuple[RouteEntry, BreakerTicket | None] | None:
        while self.attempts <= self.max_retries:
            left = self.remaining()
            if left is not None and left <= 0:
                self.errors.append(("router", ProviderTimeoutError("request deadline reached")))
                return None
            entry = next(self._todo, None)
            if entry is None:
                return None
            if self.min_window is not None and (entry.context_window() or 0) <= self.min_window:
                continue
            ticket = None
            if entry.breaker is not None:
                ticket = entry.breaker.try_allow()
                if ticket is None:  # another call took the probe, or it opened meanwhile
                    self.errors.append((entry.name, CircuitBreakerOpenError(
                        retry_after=entry.breaker.retry_after(), provider=entry.name)))
                    continue
            self.attempts += 1
            entry.attempts += 1
            return entry, ticket
        return None

    def failed(self, entry: RouteEntry, ticket: BreakerTicket | None, error: Exception,
               deadline_cut: bool) -> Exception | None:
        """Record a failed attempt; the error to raise now, or None to go on."""
        entry.failures += 1
        entry.errors[type(error).__name__] += 1
        if ticket is not None:
            if deadline_cut:  # the caller's deadline, not the provider's fault
                ticket.release()
            else:
                ticket.failure(error)
        self.errors.append((entry.name, error))
        verdict = decide(error)
        if verdict is Verdict.RETURN:
            return error
        if verdict is Verdict.FAILOVER_LARGER_CONTEXT:
            window = entry.context_window()
            if window is None:
                return error
            self.min_window = max(window, self.min_window or 0)
        return None

    def exhausted(self) -> ProviderError:
        upstream = [e for _, e in self.errors if not isinstance(e, CircuitBreakerOpenError)]
        if upstream and all(isinstance(e, ContextWindowExceededError) for e in upstream):
            last = upstream[-1]
            assert isinstance(last, ContextWindowExceededError)
            return last
        hints = [getattr(e, "retry_after", None) for _, e in self.errors]
        known = [h for h in hints if isinstance(h, int | float) and not isinstance(h, bool)]
        soonest = min(known) if known else None
        message = f"all providers failed after {self.attempts} attempt(s)"
        if upstream and all(isinstance(e, RateLimitError) for e in upstream):
            return AllProvidersRateLimitedError(message, self.errors, soonest)
        if not upstream:
            return AllCircuitsOpenError("no provider could be called: every breaker is open",
                                        self.errors, soonest)
        return AllProvidersFailedError(message, self.errors, soonest)


def normalise(error: Exception, name: str, deadline_cut: bool) -> Exception:
    """Transport exceptions become provider errors so they can be listed and counted."""
    if deadline_cut:
        return ProviderTimeoutError(f"{name}: request deadline reached", provider=name)
    if isinstance(error, TimeoutError):
        return ProviderTimeoutError(f"{name}: timed out", provider=name)
    if isinstance(error, OSError):
        return ProviderConnectionError(f"{name}: {type(error).__name__}: {error}", provider=name)
    return error


async def within(awaitable: Awaitable[T], left: float | None) -> T:
    if left is None:
        return await awaitable
    async with asyncio.timeout(max(left, 0.0)):
        return await awaitable


