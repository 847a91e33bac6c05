"""Failover: what the router does after a failed attempt, and the walk over candidates.

:class:`FailoverChain` is one router call's walk: at most ``max_retries + 1``
providers, within the request's deadline. After each failure it consults one
table, :data:`FAILOVER_TABLE`, first matching row wins. The router never guesses
from status codes: the error class (set once by ``error_from_http`` or by a
provider) decides. docs/routing.md has the same table; tests/test_failover_table.py
checks it row by row.

=====================================  ======================  =========================================
error                                  verdict                 what happens next
=====================================  ======================  =========================================
ContentPolicyError (400 safety)        RETURN                  a policy decision, not an outage
ContextWindowExceededError (400)       FAILOVER_LARGER_CONTEXT never the same model again; only a model
                                                               with a larger known window, else return
InvalidRequestError, NotFoundError     RETURN                  the request is wrong everywhere
AuthenticationError (401/403)          RETURN                  a config error to fix, not route around
BudgetExceededError                    RETURN                  a refusal by our own policy
RateLimitError with retry_after        RETRY_AFTER             same provider after the delay if it fits
                                                               the deadline, else fail over at once
RateLimitError (no hint, or quota)     FAILOVER                the limit belongs to this provider
ProviderTimeoutError                   FAILOVER                no response / first-token timeout: never
                                                               the same provider again
StreamInterruptedError                 FAILOVER if retryable   a cut, stall or broken event: never the
                                       else RETURN             same provider (the router may continue)
ProviderConnectionError (reset)        RETRY_BACKOFF           bounded retries with backoff, then fail over
other ProviderError (5xx, 529)         RETRY_BACKOFF if        bounded retries with backoff, then fail over
                                       retryable, else RETURN
TimeoutError                           FAILOVER                as ProviderTimeoutError
OSError                                RETRY_BACKOFF           as ProviderConnectionError
anything else                          RETURN                  a bug: never hidden by failover
=====================================  ======================  =========================================

RETURN re-raises the original exception unchanged (its type is the caller's
``except`` clause). The RETRY rows retry the same provider at most
``same_provider_retries`` times per call (a router setting, default 0 because
providers run the same rules in their own ``RetryPolicy``), and never past the
request's deadline: a ``retry_after`` longer than what is left means fail over,
not sleep.
"""

from __future__ import annotations

import asyncio
import random
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
    StreamInterruptedError,
)
from ._types import ProviderHealth, TokenUsage
from .circuit_breaker import BreakerTicket, CircuitBreaker
from .providers.base_provider import BaseLLMProvider
from .retry import Backoff

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
    """Raise the error now: no retry, no failover."""
    FAILOVER = "failover"
    """Next provider at once; never this one again in this call."""
    RETRY_AFTER = "retry_after"
    """This provider again after its ``retry_after`` if that fits the deadline, else fail over."""
    RETRY_BACKOFF = "retry_backoff"
    """This provider again after a backoff, a bounded number of times, then fail over."""
    FAILOVER_LARGER_CONTEXT = "failover_larger_context"
    """Only providers whose model has a larger context window; return if none is known."""


Rule = Callable[[BaseException], Verdict]


def _when_retryable(verdict: Verdict) -> Rule:
    def rule(error: BaseException) -> Verdict:
        return verdict if getattr(error, "retryable", False) else Verdict.RETURN

    return rule


def _rate_limit(error: BaseException) -> Verdict:
    hint = getattr(error, "retry_after", None)
    if getattr(error, "retryable", False) and isinstance(hint, int | float) and hint >= 0:
        return Verdict.RETRY_AFTER
    return Verdict.FAILOVER


FAILOVER_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Verdict | Rule], ...] = (
    (ContentPolicyError, Verdict.RETURN),
    (ContextWindowExceededError, Verdict.FAILOVER_LARGER_CONTEXT),
    (InvalidRequestError, Verdict.RETURN),
    (AuthenticationError, Verdict.RETURN),
    (BudgetExceededError, Verdict.RETURN),
    (RateLimitError, _rate_limit),
    (ProviderTimeoutError, Verdict.FAILOVER),
    (StreamInterruptedError, _when_retryable(Verdict.FAILOVER)),
    (ProviderConnectionError, Verdict.RETRY_BACKOFF),
    (ProviderError, _when_retryable(Verdict.RETRY_BACKOFF)),
    (TimeoutError, Verdict.FAILOVER),
    (OSError, Verdict.RETRY_BACKOFF),
)
"""(error class, verdict or rule); the first row whose class matches decides. See the module docstring."""


def decide(error: BaseException) -> Verdict:
    """The verdict for ``error`` from :data:`FAILOVER_TABLE`."""
    for kinds, verdict in FAILOVER_TABLE:
        if isinstance(error, kinds):
            return verdict if isinstance(verdict, Verdict) else verdict(error)
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


NANOS_PER_USD = 1_000_000_000


def money(value: float) -> Decimal:
    """A float cost as the exact decimal it prints as (kept for callers; the router counts nanos)."""
    return Decimal(repr(float(value)))


def nanos(value_usd: float) -> int:
    """A cost in whole nano-dollars: exact for every cost ``pricing`` makes (integer nanos / 1e9).

    The router adds these per call instead of building a ``Decimal`` per call (≈3% of a
    routed call's CPU went there); a sum of ints is exact and ``/ 1e9`` rounds it once."""
    return round(value_usd * NANOS_PER_USD)


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
    cost_nanos: int = 0
    """Spend on this provider in nano-dollars (see :func:`nanos`)."""
    errors: Counter[str] = field(default_factory=Counter)
    rejects_prefill: bool = False
    """Learned: this provider answered 400 to an assistant prefill, so it never continues a stream."""
    _window: int | None = None
    _window_known: bool = False

    @property
    def cost(self) -> Decimal:
        """Spend on this provider in USD, exact."""
        return Decimal(self.cost_nanos).scaleb(-9)

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
            cost = nanos(usage.total_cost_usd)
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


class FailoverChain:
    """One router call's walk over its candidates; see the module docstring for the budgets."""

    __slots__ = ("_again", "_backoff", "_clock", "_retried", "_rng", "_todo", "attempts", "deadline",
                 "errors", "max_retries", "min_window", "retrying", "same_provider_retries", "skip")

    def __init__(self, order: Iterable[RouteEntry], max_retries: int, timeout: float | None,
                 clock: Callable[[], float], same_provider_retries: int = 0,
                 backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self._clock = clock
        self.max_retries = max_retries
        self.same_provider_retries = same_provider_retries
        self._backoff = backoff or Backoff(0.5, 4.0)
        self._rng = rng
        self.deadline = None if timeout is None else clock() + timeout
        self._todo = iter(order)
        self._again: RouteEntry | None = None
        self._retried: dict[str, int] | None = None
        """Same-provider retries so far, made on the first retry (most calls never retry)."""
        self.errors: list[tuple[str, BaseException]] = []
        self.attempts = 0
        """Providers tried (a same-provider retry is not a new one)."""
        self.retrying = False
        """The step just returned by :meth:`next` retries the previous provider."""
        self.min_window: int | None = None
        self.skip: Callable[[RouteEntry], bool] | None = None
        """Candidates to pass over from now on (e.g. providers that refuse a prefill)."""

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline

    def normalise(self, raw: Exception, entry: RouteEntry) -> tuple[Exception, bool]:
        """``raw`` as :func:`normalise` makes it, and whether it was this call's deadline
        (a ``TimeoutError`` past it) rather than the provider that cut the attempt."""
        cut = isinstance(raw, TimeoutError) and self.past_deadline()
        return normalise(raw, entry.name, cut), cut

    def next(self) -> tuple[RouteEntry, BreakerTicket | None] | None:
        again, self._again = self._again, None
        if again is not None:
            ticket = None if again.breaker is None else again.breaker.try_allow()
            if again.breaker is None or ticket is not None:
                self.retrying = True
                again.attempts += 1
                return again, ticket
            # its breaker opened meanwhile: fail over instead
        self.retrying = False
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
            if self.skip is not None and self.skip(entry):
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

    def charge(self, entry: RouteEntry, ticket: BreakerTicket | None, error: Exception,
               deadline_cut: bool) -> None:
        """Book a failed attempt on ``entry``, its breaker and this chain's errors (no verdict)."""
        entry.failures += 1
        entry.errors[type(error).__name__] += 1
        if ticket is not None:
            if deadline_cut:  # the caller's deadline, not the provider's fault
                ticket.release()
            else:
                ticket.failure(error)
        self.errors.append((entry.name, error))

    def failed(self, entry: RouteEntry, ticket: BreakerTicket | None, error: Exception,
               deadline_cut: bool) -> Exception | float | None:
        """Record a failed attempt: the error to raise now, seconds to wait before retrying
        the same provider (the next :meth:`next` returns it), or None to fail over."""
        self.charge(entry, ticket, error, deadline_cut)
        verdict = decide(error)
        if verdict is Verdict.RETURN:
            return error
        if verdict is Verdict.FAILOVER_LARGER_CONTEXT:
            window = entry.context_window()
            if window is None:
                return error
            self.min_window = max(window, self.min_window or 0)
        if verdict in (Verdict.RETRY_AFTER, Verdict.RETRY_BACKOFF) and not deadline_cut:
            return self._retry_delay(entry, verdict, error)
        return None

    def _retry_delay(self, entry: RouteEntry, verdict: Verdict, error: Exception) -> float | None:
        if self.same_provider_retries <= 0:
            return None
        retried = self._retried
        if retried is None:
            retried = self._retried = {}
        done = retried.get(entry.name, 0)
        if done >= self.same_provider_retries:
            return None
        if verdict is Verdict.RETRY_AFTER:
            wait = float(getattr(error, "retry_after", 0.0) or 0.0)
        else:
            wait = self._backoff.delay(done, self._rng)
        left = self.remaining()
        if left is not None and wait >= left:
            return None  # the wait would outlive the deadline: fail over instead of sleeping
        retried[entry.name] = done + 1
        self._again = entry
        return wait

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


