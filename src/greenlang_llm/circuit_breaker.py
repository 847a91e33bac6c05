"""A per-provider circuit breaker: stop calling a provider that keeps failing.

States and moves::

    CLOSED --(failure_threshold consecutive provider failures)--> OPEN (for base_timeout)
    OPEN   --(its open period elapsed, one caller admitted)----> HALF_OPEN
    HALF_OPEN --(the probe succeeds)--> CLOSED (the open period back to base_timeout)
    HALF_OPEN --(the probe fails)-----> OPEN (base_timeout longer than last time, at most recovery_timeout)

Open periods escalate as Envoy's outlier detection does, linearly: the k-th open in a
row lasts ``k × base_timeout``, up to ``recovery_timeout`` (base 5 s, cap 60 s: 5, 10,
15, 20, … 60, 60). A provider that failed once is tried again soon (a primary that
recovered is used again soon); one that keeps failing its trials is left alone for
longer and longer. Linear, not doubling: after an outage of T seconds the period in
progress is about ``sqrt(2 × T × base)`` (25 s after a 60 s outage with a 5 s base),
so a recovered primary is used again within that, whatever the phase of its trials;
doubling reached 40 s after the same outage and, for a 65 s outage, the full cap
(docs/routing.md has the table).
``recovery_timeout`` keeps its old meaning as the longest wait; without a
``base_timeout`` every period is ``recovery_timeout``, as before escalation
existed. The router and the gateway pass a base (:data:`DEFAULT_BASE_TIMEOUT`).

What counts as a failure: a :class:`ProviderError` whose ``retryable`` is true
(5xx, 529, timeouts, resets, a 429 that outlived the provider's own retries), and
a raw ``TimeoutError``/``OSError``. Client errors (the ``InvalidRequestError``
family, ``AuthenticationError``), ``BudgetExceededError`` and
``CircuitBreakerOpenError`` are *neutral*: they neither count nor reset the
count, because they say nothing about whether the provider can generate. A
success resets the count.

Every admission is a :class:`BreakerTicket` stamped with the breaker's
*generation* (bumped at each transition). An outcome only matters in its own
generation: 95 slow successes admitted before the breaker opened cannot close
it again; only the half-open probe decides. A probe that never reports (a hung
call) loses its lease after ``recovery_timeout`` (the cap), so the breaker can
never wedge in HALF_OPEN.

The state lives behind :class:`BreakerStateStore` so that a shared store (state
kept in Redis for several gateway replicas) can replace :class:`LocalBreakerState`
without touching callers. Its operations are synchronous and atomic with
respect to each other: a shared store keeps a local mirror for the hot path
and syncs transitions in the background, so routing never awaits the network.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from ._errors import (
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    InvalidRequestError,
    ProviderError,
)

__all__ = [
    "DEFAULT_BASE_TIMEOUT",
    "BreakerStateStore",
    "BreakerStoreFactory",
    "BreakerTicket",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "LocalBreakerState",
    "Transition",
    "counts_as_failure",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BASE_TIMEOUT = 5.0
"""The first open period the router and the gateway use (seconds; capped by the recovery timeout)."""


def open_periods_start(base_timeout: float | None, recovery_timeout: float) -> float:
    """The first open period: ``base_timeout`` capped by ``recovery_timeout`` (None: the cap itself)."""
    if base_timeout is None:
        return recovery_timeout
    if not base_timeout > 0:
        raise ValueError(f"base_timeout must be > 0 seconds, got {base_timeout!r}")
    return min(float(base_timeout), recovery_timeout)


class CircuitState(StrEnum):
    """A breaker's state; the values are what ``get_metrics()`` reports as ``circuit_breaker_state``."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change: ``at`` on the breaker's clock, ``timestamp`` in UTC wall time."""

    at: float
    timestamp: datetime
    from_state: CircuitState
    to_state: CircuitState
    reason: str


def counts_as_failure(error: BaseException) -> bool:
    """Whether ``error`` says the provider itself is failing (see module docstring)."""
    if isinstance(error, InvalidRequestError | AuthenticationError | BudgetExceededError
                  | CircuitBreakerOpenError):
        return False
    if isinstance(error, ProviderError):
        return error.retryable
    return isinstance(error, TimeoutError | OSError)


@dataclass(frozen=True, slots=True)
class Admission:
    generation: int
    probe: bool


class BreakerStateStore(Protocol):
    """Where a breaker's state lives. Each method is atomic; ``now`` is the breaker's clock."""

    def admit(self, now: float) -> Admission | float:
        """An admission, or the seconds until a call may be admitted."""

    def succeed(self, admission: Admission, now: float) -> tuple[CircuitState, CircuitState] | None:
        """Record a success; returns (from, to) when the state changed."""

    def fail(self, admission: Admission, now: float, reason: str) -> tuple[CircuitState, CircuitState] | None:
        """Record a provider failure; returns (from, to) when the state changed."""

    def release(self, admission: Admission) -> None:
        """The admitted call ended without a verdict (cancelled, neutral error)."""

    def available(self, now: float) -> bool:
        """Whether ``admit`` would succeed now, without admitting."""

    def retry_after(self, now: float) -> float:
        """Seconds until a call may be admitted (0 when one may be now)."""

    @property
    def state(self) -> CircuitState: ...

    @property
    def consecutive_failures(self) -> int: ...

    @property
    def generation(self) -> int: ...

    @property
    def open_period(self) -> float:
        """Seconds the current (or, when closed, the next) open period lasts."""


class BreakerStoreFactory(Protocol):
    """Builds the state store of one named breaker (a router calls it once per provider)."""

    def __call__(
        self, name: str, failure_threshold: int, recovery_timeout: float, base_timeout: float | None, /
    ) -> BreakerStateStore: ...


class LocalBreakerState:
    """In-process state: plain attributes, atomic because the event loop is single-threaded."""

    def __init__(
        self, failure_threshold: int, recovery_timeout: float, base_timeout: float | None = None
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.base_timeout = open_periods_start(base_timeout, recovery_timeout)
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._generation = 0
        self._opened_at = 0.0
        self._open_for = self.base_timeout
        self._probe_started: float | None = None
        self._closed_admission = Admission(0, False)

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def open_period(self) -> float:
        return self._open_for

    def _move(self, to: CircuitState, now: float) -> tuple[CircuitState, CircuitState]:
        before = self._state
        self._state = to
        self._generation += 1
        self._probe_started = None
        if to is CircuitState.OPEN:
            self._opened_at = now
            if before is CircuitState.HALF_OPEN:  # a failed trial: wait one base longer, up to the cap
                self._open_for = min(self.recovery_timeout, self._open_for + self.base_timeout)
        if to is CircuitState.CLOSED:
            self._failures = 0
            self._open_for = self.base_timeout
            self._closed_admission = Admission(self._generation, False)
        return before, to

    def _probe_slot_free(self, now: float) -> bool:
        if self._state is CircuitState.OPEN:
            return now - self._opened_at >= self._open_for
        # HALF_OPEN: free only when the probe's lease ran out.
        return self._probe_started is not None and now - self._probe_started >= self.recovery_timeout

    def admit(self, now: float) -> Admission | float:
        if self._state is CircuitState.CLOSED:
            return self._closed_admission
        if not self._probe_slot_free(now):
            return self.retry_after(now)
        if self._state is CircuitState.HALF_OPEN:
            self._generation += 1  # the stale probe's verdict no longer counts
        else:
            self._move(CircuitState.HALF_OPEN, now)
        self._probe_started = now
        return Admission(self._generation, True)

    def succeed(self, admission: Admission, now: float) -> tuple[CircuitState, CircuitState] | None:
        if admission.generation != self._generation:
            return None
        if self._state is CircuitState.CLOSED:
            self._failures = 0
            return None
        if self._state is CircuitState.HALF_OPEN and admission.probe:
            return self._move(CircuitState.CLOSED, now)
        return None

    def fail(self, admission: Admission, now: float, reason: str) -> tuple[CircuitState, CircuitState] | None:
        if admission.generation != self._generation:
            return None
        if self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                return self._move(CircuitState.OPEN, now)
            return None
        if self._state is CircuitState.HALF_OPEN and admission.probe:
            return self._move(CircuitState.OPEN, now)
        return None

    def release(self, admission: Admission) -> None:
        if admission.probe and admission.generation == self._generation:
            # Free the slot at once: the next caller may probe.
            self._probe_started = float("-inf")

    def available(self, now: float) -> bool:
        return self._state is CircuitState.CLOSED or self._probe_slot_free(now)

    def retry_after(self, now: float) -> float:
        if self.available(now):
            return 0.0
        if self._state is CircuitState.OPEN:
            return self._opened_at + self._open_for - now
        assert self._probe_started is not None
        return self._probe_started + self.recovery_timeout - now


class BreakerTicket:
    """One admitted call. Report exactly one of ``success()``, ``failure(exc)``, ``release()``."""

    __slots__ = ("_breaker", "_done", "admission")

    def __init__(self, breaker: CircuitBreaker, admission: Admission) -> None:
        self._breaker = breaker
        self.admission = admission
        self._done = False

    @property
    def is_probe(self) -> bool:
        return self.admission.probe

    def success(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self.admission, None)

    def failure(self, error: BaseException) -> None:
        """Counts when :func:`counts_as_failure` says so; a neutral error just releases."""
        if not self._done:
            self._done = True
            if counts_as_failure(error):
                self._breaker._record(self.admission, error)
            else:
                self._breaker._store.release(self.admission)

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._store.release(self.admission)


class CircuitBreaker:
    """Guards one provider. ``call(fn)`` wraps an async call; ``allow()`` hands out tickets.

    ``recovery_timeout`` is the longest an open breaker waits before its trial call;
    ``base_timeout`` the first wait, one base longer after each failed trial up to that cap (see
    the module docstring). None (the default) means every wait is ``recovery_timeout``.
    ``store`` already holds its own periods: a store built by a factory gets both numbers.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        name: str = "breaker",
        store: BreakerStateStore | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        history: int = 1000,
        base_timeout: float | None = None,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) \
                or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be an integer >= 1, got {failure_threshold!r}")
        if not recovery_timeout >= 0:
            raise ValueError(f"recovery_timeout must be >= 0 seconds, got {recovery_timeout!r}")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(recovery_timeout)
        self.base_timeout = open_periods_start(base_timeout, self.recovery_timeout)
        """The first open period (``recovery_timeout`` when no base was given)."""
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._store: BreakerStateStore = store or LocalBreakerState(
            failure_threshold, self.recovery_timeout, self.base_timeout)
        self._on_transition = on_transition
        self.transitions: deque[Transition] = deque(maxlen=history)
        """The latest state changes, oldest first."""
        self.transition_counts: dict[CircuitState, int] = dict.fromkeys(CircuitState, 0)
        """How many times each state was entered."""

    @property
    def state(self) -> CircuitState:
        return self._store.state

    @property
    def consecutive_failures(self) -> int:
        return self._store.consecutive_failures

    @property
    def open_period(self) -> float:
        """Seconds the current open period lasts (when closed: the next one, ``base_timeout``)."""
        return self._store.open_period

    def is_available(self) -> bool:
        """Whether a call would be admitted now (closed, or a probe slot is free). No side effect."""
        return self._store.available(self._clock())

    def retry_after(self) -> float:
        """Seconds until a call may be admitted; 0 when one may be now."""
        return max(0.0, self._store.retry_after(self._clock()))

    def _admit(self, now: float) -> Admission | float:
        store = self._store
        before = store.state
        admission = store.admit(now)
        if before is not CircuitState.CLOSED and store.state is not before:
            self._note(before, store.state, "open period elapsed: admitting one probe", now)
        return admission

    def try_allow(self) -> BreakerTicket | None:
        """A ticket, or None when the breaker refuses (no exception on the hot path)."""
        admission = self._admit(self._clock())
        if isinstance(admission, Admission):
            return BreakerTicket(self, admission)
        return None

    def allow(self) -> BreakerTicket:
        """A ticket, or ``CircuitBreakerOpenError(retry_after=remaining seconds)``."""
        now = self._clock()
        admission = self._admit(now)
        if isinstance(admission, Admission):
            return BreakerTicket(self, admission)
        raise CircuitBreakerOpenError(
            f"circuit breaker {self.name!r} is {self.state.value}; retry in {admission:.1f}s",
            retry_after=max(0.0, admission), provider=self.name,
        )

    def record_success(self) -> None:
        """Ticket-less report, treated as the current probe's (or a closed call's) outcome."""
        self._record(self._current_admission(), None)

    def record_failure(self, error: BaseException | None = None) -> None:
        """Ticket-less report of a failure; a neutral ``error`` (see module docstring) is ignored."""
        if error is None or counts_as_failure(error):
            self._record(self._current_admission(), error)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` through the breaker; raises ``CircuitBreakerOpenError`` without calling."""
        ticket = self.allow()
        try:
            result = await fn()
        except BaseException as error:
            if isinstance(error, Exception):
                ticket.failure(error)
            else:  # cancelled / interpreter exit: no verdict
                ticket.release()
            raise
        ticket.success()
        return result

    def _current_admission(self) -> Admission:
        return Admission(self._store.generation, self._store.state is CircuitState.HALF_OPEN)

    def _record(self, admission: Admission, error: BaseException | None) -> None:
        now = self._clock()
        if error is None:
            moved = self._store.succeed(admission, now)
            reason = "probe succeeded"
        else:
            reason = f"{type(error).__name__}: {error}"[:200]
            moved = self._store.fail(admission, now, reason)
            if moved and moved[0] is CircuitState.CLOSED:
                reason = f"{self.failure_threshold} consecutive failures, last {reason}"
            elif moved:
                reason = f"probe failed (next trial in {self._store.open_period:g}s): {reason}"
        if moved is not None:
            self._note(moved[0], moved[1], reason, now)

    def _note(self, before: CircuitState, after: CircuitState, reason: str, now: float) -> None:
        transition = Transition(
            now, datetime.fromtimestamp(self._wall_clock(), UTC), before, after, reason
        )
        self.transitions.append(transition)
        self.transition_counts[after] += 1
        log = logger.warning if after is CircuitState.OPEN else logger.info
        log("circuit %s: %s -> %s (%s)", self.name, before.value, after.value, reason)
        if self._on_transition is not None:
            self._on_transition(transition)

    def __repr__(self) -> str:
        return (f"CircuitBreaker(name={self.name!r}, state={self.state.value}, "
                f"failures={self.consecutive_failures}/{self.failure_threshold})")
