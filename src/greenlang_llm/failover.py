"""Failover: what the router does after a failed attempt, and the walk over candidates.

:class:`FailoverChain` is one router call's walk: at most ``max_failovers + 1``
providers, within the request's deadline. After each failure it consults one
table, :data:`FAILOVER_TABLE`, first matching row wins, and answers with a typed
:data:`Decision` — :class:`RetrySame`, :class:`FailOver` or :class:`GiveUp` — that
``LLMRouter.generate`` and a stream (``stream_call.py``) act on alike. The chain
also books every attempt's outcome (provider entry, breaker ticket, the router's
:class:`~greenlang_llm.router_stats.RouterStats`), so no caller touches the
router's state. The router never guesses from status codes: the error class (set
once by ``error_from_http`` or by a provider) decides. docs/routing.md has the
same table; tests/test_failover_table.py checks it row by row.

=====================================  ======================  =========================================
error                                  verdict                 what happens next
=====================================  ======================  =========================================
ContentPolicyError (400 safety)        RETURN                  a policy decision, not an outage
ContextWindowExceededError (400)       FAILOVER_LARGER_CONTEXT never the same model again; skip models
                                                               known to be no larger, try larger or
                                                               unknown windows
InvalidRequestError, NotFoundError     RETURN                  the request is wrong everywhere
AuthenticationError (401/403)          RETURN                  a config error to fix, not route around
BudgetExceededError                    RETURN                  a refusal by our own policy
RateLimitError with retry_after        RETRY_AFTER             same provider after the delay if it fits
                                                               the deadline, else fail over at once
RateLimitError (no hint, or quota)     FAILOVER                the limit belongs to this provider
ProviderTimeoutError                   FAILOVER                no response / first-token timeout: never
                                                               the same provider again (and the provider
                                                               itself does not retry it while this
                                                               call has another candidate: FALLBACK)
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

Two facts outlive one attempt. Which candidates remain: a provider whose upstream
stayed silent past its timeout asks :data:`~greenlang_llm.retry.FALLBACK` (set by
:meth:`FailoverChain.next`) and gives up at once when another one does, so a hung
upstream costs one timeout, not ``max_retries + 1``. And what a context-length
rejection taught (:class:`ContextLimits`): the models that refused the prompt and
the largest window known too small. A gateway route with ``context_window_fallbacks``
shares one ``ContextLimits`` with the routers it falls back to (:data:`CONTEXT_LIMITS`),
so no model sees the same prompt twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import NoReturn, TypeAlias, TypeVar

from ._errors import (
    AllCircuitsOpenError,
    AllProvidersFailedError,
    AllProvidersRateLimitedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from ._types import TokenUsage
from .circuit_breaker import BreakerTicket
from .money import float_usd_to_nanos
from .retry import FALLBACK, Backoff
from .router_stats import RouteEntry, RouterStats

__all__ = [
    "CONTEXT_LIMITS",
    "FAILOVER_TABLE",
    "ContextLimits",
    "Decision",
    "FailOver",
    "FailoverChain",
    "GiveUp",
    "RetrySame",
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



@dataclass(frozen=True, slots=True)
class RetrySame:
    """Call the same provider again after ``wait`` seconds: the chain's next step returns it."""

    error: Exception
    wait: float


@dataclass(frozen=True, slots=True)
class FailOver:
    """Go on to the next candidate at once (for a started stream: continue it there)."""

    error: Exception


@dataclass(frozen=True, slots=True)
class GiveUp:
    """End the call with ``error`` now.

    ``bug``: the failure is not an outage (an exception outside the provider error tree,
    such as a ``KeyError`` in a provider): it is raised unchanged and never failed over
    or continued, so failover cannot hide it."""

    error: Exception
    bug: bool = False

    def raise_from(self, raw: Exception) -> NoReturn:
        """Raise ``error``: ``raw`` itself unchanged, or ``error`` chained to the ``raw`` it came from."""
        if self.error is raw:
            raise raw
        raise self.error from raw


Decision: TypeAlias = RetrySame | FailOver | GiveUp
"""What a chain decided about one failed attempt (:meth:`FailoverChain.attempt_failed`)."""


@dataclass(eq=False, slots=True)
class ContextLimits:
    """What context-length rejections taught one request: who refused, and how small is too small.

    A model that refused the prompt never gets it again (:func:`model_key`: two routes or
    two keys over one model count once); a candidate whose window is
    *known* to be no larger than the largest refusing window is skipped; an unknown window
    is tried (it may well be larger)."""

    refused: set[tuple[str, str, int | None]] = field(default_factory=set)
    too_small: int = 0
    """The largest known window of a model that refused (0: none known)."""

    def learn(self, entry: RouteEntry) -> None:
        self.refused.add(model_key(entry))
        window = entry.context_window()
        if window is not None and window > self.too_small:
            self.too_small = window

    def excludes(self, entry: RouteEntry) -> bool:
        if model_key(entry) in self.refused:
            return True
        window = entry.context_window()
        return window is not None and window <= self.too_small


def model_key(entry: RouteEntry) -> tuple[str, str, int | None]:
    """Which upstream model a candidate sends to: its catalog id (else its name), model id and
    window (two registrations configured with different windows are not the same model)."""
    provider = entry.provider
    return (getattr(provider, "catalog_id", None) or provider.name, provider.model_id, entry.context_window())


CONTEXT_LIMITS: ContextVar[ContextLimits | None] = ContextVar("greenlang_llm_context_limits", default=None)
"""A request's :class:`ContextLimits` shared by every router call made for it (the gateway sets
one around a route with ``context_window_fallbacks``); None: each call keeps its own."""


class FailoverChain:
    """One router call's walk over its candidates, and the books of each attempt.

    The caller's loop is ``while (step := chain.next()) is not None``; after the attempt
    it reports exactly one outcome: :meth:`succeeded`, :meth:`attempt_failed` (which
    answers with a :data:`Decision`), :meth:`cancelled` or :meth:`not_attempted`. See the
    module docstring for the budgets.
    """

    __slots__ = ("_again", "_backoff", "_current", "_limits", "_many", "_order", "_pos", "_retried", "_rng",
                 "attempts", "clock", "deadline", "errors", "max_failovers", "retrying",
                 "same_provider_retries", "sleep", "stats")

    def __init__(self, order: Iterable[RouteEntry], max_failovers: int, timeout: float | None,
                 clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 stats: RouterStats, same_provider_retries: int = 0,
                 backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.sleep = sleep
        """The router's injected sleep, for :class:`RetrySame` waits."""
        self.stats = stats
        self.max_failovers = max_failovers
        self.same_provider_retries = same_provider_retries
        self._backoff = backoff or Backoff(0.5, 4.0)
        self._rng = rng
        self.deadline = None if timeout is None else clock() + timeout
        self._order = order if isinstance(order, list) else list(order)
        self._pos = 0
        """Index in ``_order`` of the next candidate not yet taken."""
        self._current: RouteEntry | None = None
        """The candidate whose attempt is running (for :meth:`has_fallback`), None between attempts."""
        self._many = max_failovers > 0 and len(self._order) > 1
        """Could a fallback exist at all (else :data:`~greenlang_llm.retry.FALLBACK` is left alone:
        whatever chain it holds has ended, and its :meth:`has_fallback` says False)."""
        self._limits = CONTEXT_LIMITS.get()
        """Made on the first context-length rejection, unless the request shares one."""
        self._again: RouteEntry | None = None
        self._retried: dict[str, int] | None = None
        """Same-provider retries so far, made on the first retry (most calls never retry)."""
        self.errors: list[tuple[str, BaseException]] = []
        self.attempts = 0
        """Providers tried (a same-provider retry is not a new one)."""
        self.retrying = False
        """The step just returned by :meth:`next` retries the previous provider."""

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    # -- the walk ------------------------------------------------------------------------
    def next(self) -> tuple[RouteEntry, BreakerTicket | None] | None:
        """The next attempt (a provider and its breaker ticket), or None when the walk is over."""
        if self._many:  # the attempt's provider may ask has_fallback (retry.FALLBACK)
            FALLBACK.set(self)
        elif FALLBACK.get() is not None:
            # another chain of this task may still be mid-attempt (an open stream kept while this
            # call runs) and share this provider: a lone candidate must not answer for it. (A
            # get, not a set, on the usual path: a set costs a token and a new mapping.)
            FALLBACK.set(None)
        again, self._again = self._again, None
        if again is not None:
            ticket = None if again.breaker is None else again.breaker.try_allow()
            if again.breaker is None or ticket is not None:
                self.retrying = True
                again.attempts += 1
                self._current = again
                return again, ticket
            # its breaker opened meanwhile: fail over instead
        self.retrying = False
        while self.attempts <= self.max_failovers:
            left = self.remaining()
            if left is not None and left <= 0:
                self.errors.append(("router", ProviderTimeoutError("request deadline reached")))
                return None
            if self._pos >= len(self._order):
                return None
            entry = self._order[self._pos]
            self._pos += 1
            limits = self._limits  # (_passed_over inline: this loop runs on every call)
            if limits is not None and limits.excludes(entry):
                continue
            ticket = None
            if entry.breaker is not None:
                ticket = entry.breaker.try_allow()
                if ticket is None:  # another call took the probe, or it opened meanwhile
                    self.errors.append((entry.name, CircuitBreakerOpenError(
                        retry_after=entry.breaker.retry_after(), provider=entry.name)))
                    continue
            self.attempts += 1
            if self.attempts > 1:
                self.stats.failovers += 1
            entry.attempts += 1
            self._current = entry
            return entry, ticket
        return None

    def _passed_over(self, entry: RouteEntry) -> bool:
        """A candidate the context-length rule rules out (known to be no larger, or refused)."""
        limits = self._limits
        return limits is not None and limits.excludes(entry)

    def has_fallback(self, provider: object) -> bool:
        """True while ``provider``'s attempt runs and :meth:`next` could still offer another
        candidate (budget, deadline, filters and breakers allowing): a provider asks this on a
        silent timeout (``retry.FALLBACK``), so it runs only on that failure."""
        current = self._current
        if current is None:
            return False
        registered: object = current.provider
        while registered is not provider:  # a wrapper (StreamGuard) asks through its inner provider
            registered = getattr(registered, "inner", None)
            if registered is None:
                return False
        if self.attempts > self.max_failovers or self.past_deadline():
            return False
        for entry in self._order[self._pos:]:
            if entry is current or self._passed_over(entry):
                continue
            if entry.breaker is None or entry.breaker.is_available():
                return True
        return False

    # -- outcomes of one attempt ---------------------------------------------------------
    def succeeded(self, entry: RouteEntry, ticket: BreakerTicket | None, started: float,
                  usage: TokenUsage | None) -> None:
        """The attempt on ``entry`` (begun at clock time ``started``) answered."""
        self._current = None
        if ticket is not None:
            ticket.success()
        self.stats.cost_nanos += entry.succeeded((self.clock() - started) * 1000.0, usage)
        self.stats.succeeded += 1

    def cancelled(self, ticket: BreakerTicket | None) -> None:
        """The caller went away during the attempt: no verdict on the provider."""
        self._current = None
        self.stats.cancelled += 1
        if ticket is not None:
            ticket.release()

    def not_attempted(self, entry: RouteEntry, ticket: BreakerTicket | None) -> None:
        """The step was taken but no call was made (a stream's continuation hook refused it)."""
        self._current = None
        entry.attempts -= 1
        if ticket is not None:
            ticket.release()

    def book_cost(self, entry: RouteEntry, cost_usd: float) -> None:
        """Spend of an attempt that broke after producing tokens (its usage is an estimate)."""
        if cost_usd:
            cost = float_usd_to_nanos(cost_usd)
            entry.cost_nanos += cost
            self.stats.cost_nanos += cost

    def attempt_failed(self, entry: RouteEntry, ticket: BreakerTicket | None, raw: Exception,
                       delivered: bool = False) -> Decision:
        """Book the failed attempt and decide what comes next, from :data:`FAILOVER_TABLE`.

        ``delivered``: text of this call already reached the caller (a started stream), so
        the same provider is never retried; anything the table would retry or fail over on
        is a :class:`FailOver` (the stream continues elsewhere). Before delivery a
        :class:`GiveUp` ends the call and is counted here as a failed call; after it, the
        stream has the last word (a continuation that never produced may still move on)
        and counts its own end with :meth:`gave_up`."""
        self._current = None
        deadline_cut = isinstance(raw, TimeoutError) and self.past_deadline()
        error = normalise(raw, entry.name, deadline_cut)
        verdict = decide(error)
        bug = verdict is Verdict.RETURN and not isinstance(error, ProviderError)
        if bug and not delivered:
            # a bug in a provider is not an outage: no verdict on it, surfaced unchanged
            entry.errors[type(error).__name__] += 1
            if ticket is not None:
                ticket.release()
        else:
            self._charge(entry, ticket, error, deadline_cut)
        decision = self._decide(entry, error, verdict, deadline_cut, delivered, bug)
        if not delivered and isinstance(decision, GiveUp):
            self.stats.failed += 1
        return decision

    def prefill_rejected(self, entry: RouteEntry, ticket: BreakerTicket | None, raw: Exception) -> None:
        """``entry`` answered a continuation's assistant prefill with a plain 400: it is marked
        and skipped by every later continuation; its breaker is not charged (not an outage)."""
        self._current = None
        entry.rejects_prefill = True
        entry.errors["PrefillRejected"] += 1
        self.errors.append((entry.name, raw))
        if ticket is not None:
            ticket.release()

    def gave_up(self) -> None:
        """The caller ends the call with an error of its own (a stream that cannot be finished)."""
        self.stats.failed += 1

    def exhausted(self) -> ProviderError:
        """The error for a walk that ran out of candidates; counted as a failed call."""
        self.stats.failed += 1
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

    # -- inside ----------------------------------------------------------------------------
    def _charge(self, entry: RouteEntry, ticket: BreakerTicket | None, error: Exception,
                deadline_cut: bool) -> None:
        if isinstance(error, InvalidRequestError) and not isinstance(error, NotFoundError):
            entry.refusals += 1  # the breaker, too, holds client errors neutral (circuit_breaker)
        else:  # (a 404 names a model or path the provider does not have: its config, like a 401)
            entry.failures += 1
        entry.errors[type(error).__name__] += 1
        if ticket is not None:
            if deadline_cut:  # the caller's deadline, not the provider's fault
                ticket.release()
            else:
                ticket.failure(error)
        self.errors.append((entry.name, error))

    def _decide(self, entry: RouteEntry, error: Exception, verdict: Verdict, deadline_cut: bool,
                delivered: bool, bug: bool) -> Decision:
        if verdict is Verdict.RETURN:
            return GiveUp(error, bug)
        if delivered:
            return FailOver(error)
        if verdict is Verdict.FAILOVER_LARGER_CONTEXT:
            limits = self._limits
            if limits is None:
                limits = self._limits = ContextLimits()
            limits.learn(entry)
        if verdict in (Verdict.RETRY_AFTER, Verdict.RETRY_BACKOFF) and not deadline_cut:
            wait = self._retry_delay(entry, verdict, error)
            if wait is not None:
                return RetrySame(error, wait)
        return FailOver(error)

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

    # -- a stream's continuation on a provider that refuses a prefill (stream_call.py) ------
    def again(self, entry: RouteEntry) -> None:
        """Make ``entry`` the next step once more: a stream restarts its answer there without the
        prefill it just refused (no outage: no retry budget spent, no failover counted)."""
        self._again = entry

    def unusable(self, entry: RouteEntry, ticket: BreakerTicket | None, kind: str) -> None:
        """``entry`` answered, but with nothing this call can use (a restarted answer that does not
        begin with what the caller already has): counted under ``kind``; its breaker hears that
        it answered; the walk moves on."""
        self._current = None
        entry.errors[kind] += 1
        if ticket is not None:
            ticket.success()


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


