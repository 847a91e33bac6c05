"""CircuitBreaker: the full cycle on a fake clock, neutral errors, one probe under concurrency."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenlang_llm import _errors as errors
from greenlang_llm.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    counts_as_failure,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def _fail() -> None:
    raise errors.ServiceUnavailableError("boom", status_code=503)


async def _ok() -> str:
    return "ok"


BOOM = errors.ServiceUnavailableError("boom", status_code=503)


def _breaker(clock: FakeClock, threshold: int = 3, timeout: float = 60.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, timeout, clock=clock, name="p1")


def test_defaults_match_the_contract() -> None:
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == 5
    assert breaker.recovery_timeout == 60.0
    assert breaker.state is CircuitState.CLOSED
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]


def test_circuit_breaker_open_error_is_the_shared_class() -> None:
    assert CircuitBreakerOpenError is errors.CircuitBreakerOpenError


async def test_full_cycle_closed_open_half_open_closed() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(errors.ServiceUnavailableError):
            await breaker.call(_fail)
    assert breaker.state is CircuitState.OPEN

    clock.advance(20)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitBreakerOpenError) as info:
        await breaker.call(counted)
    assert calls == 0
    assert info.value.retry_after == pytest.approx(40.0)

    clock.advance(40)
    assert await breaker.call(counted) == "ok"
    assert calls == 1
    assert breaker.state is CircuitState.CLOSED
    states = [(t.from_state, t.to_state) for t in breaker.transitions]
    assert states == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    assert [t.at for t in breaker.transitions] == [1000.0, 1060.0, 1060.0]
    assert breaker.transition_counts[CircuitState.OPEN] == 1


async def test_failed_probe_reopens_with_a_fresh_timeout() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1, timeout=10)
    with pytest.raises(errors.ServiceUnavailableError):
        await breaker.call(_fail)
    clock.advance(10)
    with pytest.raises(errors.ServiceUnavailableError):
        await breaker.call(_fail)
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(10.0)
    clock.advance(9.9)
    assert not breaker.is_available()
    clock.advance(0.1)
    assert breaker.is_available()


async def test_success_resets_the_consecutive_count() -> None:
    breaker = _breaker(FakeClock())
    for _ in range(2):
        with pytest.raises(errors.ServiceUnavailableError):
            await breaker.call(_fail)
    await breaker.call(_ok)
    for _ in range(2):
        with pytest.raises(errors.ServiceUnavailableError):
            await breaker.call(_fail)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 2


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidRequestError("bad", status_code=400),
        errors.AuthenticationError("key", status_code=401),
        errors.NotFoundError("model", status_code=404),
        errors.ContextWindowExceededError("long", status_code=400),
        errors.ContentPolicyError("no", status_code=400),
        errors.BudgetExceededError("budget"),
        errors.RateLimitError("quota", retryable=False),
    ],
)
async def test_client_errors_and_budget_refusals_are_neutral(error: Exception) -> None:
    breaker = _breaker(FakeClock(), threshold=2)
    with pytest.raises(errors.ServiceUnavailableError):
        await breaker.call(_fail)

    async def raise_it() -> None:
        raise error

    for _ in range(5):
        with pytest.raises(type(error)):
            await breaker.call(raise_it)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 1  # neither counted nor reset


@pytest.mark.parametrize(
    "error",
    [
        errors.ServiceUnavailableError("529", status_code=529),
        errors.ProviderTimeoutError("slow"),
        errors.ProviderConnectionError("reset"),
        errors.RateLimitError("429 after retries", retry_after=3),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_provider_failures_count(error: BaseException) -> None:
    assert counts_as_failure(error)


async def test_one_probe_under_one_hundred_concurrent_callers() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1, timeout=5)
    with pytest.raises(errors.ServiceUnavailableError):
        await breaker.call(_fail)
    clock.advance(5)
    gate = asyncio.Event()
    entered = 0

    async def slow_ok() -> str:
        nonlocal entered
        entered += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(breaker.call(slow_ok)) for _ in range(100)]
    await asyncio.sleep(0)
    assert entered == 1
    assert breaker.state is CircuitState.HALF_OPEN
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(r == "ok" for r in results) == 1
    refused = [r for r in results if isinstance(r, CircuitBreakerOpenError)]
    assert len(refused) == 99
    assert breaker.state is CircuitState.CLOSED


async def test_late_successes_admitted_before_opening_do_not_close_it() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=2)
    slow = [breaker.allow() for _ in range(10)]
    for _ in range(2):
        breaker.allow().failure(errors.ServiceUnavailableError("x"))
    assert breaker.state is CircuitState.OPEN
    for ticket in slow:
        ticket.success()
    assert breaker.state is CircuitState.OPEN


async def test_cancelled_probe_frees_the_slot_for_the_next_caller() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1, timeout=5)
    breaker.allow().failure(errors.ServiceUnavailableError("x"))
    clock.advance(5)
    probe = breaker.allow()
    assert probe.is_probe
    assert breaker.try_allow() is None
    probe.release()
    second = breaker.allow()
    assert second.is_probe
    second.success()
    assert breaker.state is CircuitState.CLOSED


async def test_a_hung_probe_loses_its_lease_after_the_recovery_timeout() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1, timeout=5)
    breaker.allow().failure(errors.ServiceUnavailableError("x"))
    clock.advance(5)
    hung = breaker.allow()
    clock.advance(4)
    assert breaker.try_allow() is None
    clock.advance(1)
    fresh = breaker.allow()
    hung.success()  # too late: its verdict no longer counts
    assert breaker.state is CircuitState.HALF_OPEN
    fresh.failure(errors.ServiceUnavailableError("still down"))
    assert breaker.state is CircuitState.OPEN


async def test_ticketless_reports_drive_the_same_cycle() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, threshold=2, timeout=1)
    breaker.record_failure(errors.ServiceUnavailableError("x"))
    breaker.record_failure(errors.InvalidRequestError("neutral"))
    breaker.record_failure(errors.ServiceUnavailableError("x"))
    assert breaker.state is CircuitState.OPEN
    clock.advance(1)
    breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_transition_callback_and_log(caplog: pytest.LogCaptureFixture) -> None:
    seen = []
    breaker = CircuitBreaker(1, 1.0, clock=FakeClock(), name="claude", on_transition=seen.append)
    with caplog.at_level("INFO", logger="greenlang_llm.circuit_breaker"):
        breaker.allow().failure(errors.ServiceUnavailableError("down", status_code=503))
    assert [t.to_state for t in seen] == [CircuitState.OPEN]
    assert "circuit claude: closed -> open" in caplog.text
    assert "1 consecutive failures" in seen[0].reason


@pytest.mark.parametrize(("threshold", "timeout"), [(0, 1.0), (-1, 1.0), (True, 1.0), (1, -1.0)])
def test_invalid_parameters_are_rejected(threshold: int, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(threshold, timeout)


_EDGES = {
    (CircuitState.CLOSED, CircuitState.OPEN),
    (CircuitState.OPEN, CircuitState.HALF_OPEN),
    (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    (CircuitState.HALF_OPEN, CircuitState.OPEN),
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["admit", "ok", "fail", "neutral", "cancel", "wait"]),
                          st.integers(0, 50)), max_size=80))
def test_breaker_invariants_hold_for_any_sequence(ops: list[tuple[str, int]]) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    open_tickets = []
    for op, arg in ops:
        if op == "wait":
            clock.advance(arg / 5)
        elif op == "admit":
            was_blocked = breaker.state is CircuitState.OPEN and breaker.retry_after() > 0
            ticket = breaker.try_allow()
            assert (ticket is None) or not was_blocked
            if ticket is not None:
                open_tickets.append(ticket)
        elif open_tickets:
            ticket = open_tickets.pop(arg % len(open_tickets))
            if op == "ok":
                ticket.success()
            elif op == "fail":
                ticket.failure(errors.ServiceUnavailableError("x"))
            elif op == "neutral":
                ticket.failure(errors.InvalidRequestError("x"))
            else:
                ticket.release()
        live_probes = [t for t in open_tickets
                       if t.is_probe and t.admission.generation == breaker._store.generation]
        assert len(live_probes) <= 1
        assert breaker.consecutive_failures < 3 or breaker.state is not CircuitState.CLOSED
    history = list(breaker.transitions)
    assert all((t.from_state, t.to_state) in _EDGES for t in history)
    assert all(a.to_state is b.from_state for a, b in itertools.pairwise(history))


# -- escalating open periods ------------------------------------------------------------------


def _escalating(clock: FakeClock, base: float = 5.0, cap: float = 60.0) -> CircuitBreaker:
    return CircuitBreaker(1, cap, clock=clock, name="p1", base_timeout=base)


def _waits_until_probe(breaker: CircuitBreaker, clock: FakeClock) -> float:
    """Advance in 0.5 s steps until a probe is admitted; the seconds that took."""
    waited = 0.0
    while not breaker.is_available():
        assert breaker.try_allow() is None
        clock.advance(0.5)
        waited += 0.5
    return waited


def test_each_failed_trial_lengthens_the_open_period_by_the_base_up_to_the_cap() -> None:
    """Linear, as Envoy's outlier detection (base x opens in a row); see docs/routing.md for why."""
    clock = FakeClock()
    breaker = _escalating(clock)
    breaker.allow().failure(BOOM)
    waits = []
    for _ in range(14):
        waits.append(_waits_until_probe(breaker, clock))
        probe = breaker.allow()
        assert probe.is_probe
        probe.failure(BOOM)
    assert waits == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 60, 60]
    assert breaker.open_period == 60
    assert "next trial in 60s" in breaker.transitions[-1].reason


def test_a_successful_trial_resets_the_escalation() -> None:
    clock = FakeClock()
    breaker = _escalating(clock)
    breaker.allow().failure(BOOM)
    for _ in range(3):  # 5, 10, 15 s: three failed trials, the next period is 20 s
        clock.advance(breaker.retry_after())
        breaker.allow().failure(BOOM)
    assert breaker.open_period == 20
    clock.advance(20)
    breaker.allow().success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.open_period == 5
    breaker.allow().failure(BOOM)  # the next outage starts at the base again
    assert breaker.retry_after() == pytest.approx(5.0)
    assert _waits_until_probe(breaker, clock) == 5


def test_a_cancelled_or_neutral_trial_neither_escalates_nor_resets() -> None:
    clock = FakeClock()
    breaker = _escalating(clock)
    breaker.allow().failure(BOOM)
    clock.advance(5)
    breaker.allow().failure(BOOM)  # open for 10 s now
    clock.advance(10)
    breaker.allow().release()
    breaker.allow().failure(errors.InvalidRequestError("neutral"))
    breaker.allow().failure(BOOM)
    assert breaker.open_period == 15


async def test_one_probe_per_escalated_period_under_one_hundred_concurrent_callers() -> None:
    clock = FakeClock()
    breaker = _escalating(clock)
    breaker.allow().failure(BOOM)
    clock.advance(5)
    breaker.allow().failure(BOOM)  # open for 10 s
    gate = asyncio.Event()
    entered = 0

    async def slow_ok() -> str:
        nonlocal entered
        entered += 1
        await gate.wait()
        return "ok"

    clock.advance(9.5)
    early = await asyncio.gather(*(breaker.call(slow_ok) for _ in range(100)), return_exceptions=True)
    assert entered == 0
    assert all(isinstance(r, CircuitBreakerOpenError) for r in early)
    clock.advance(0.5)
    tasks = [asyncio.create_task(breaker.call(slow_ok)) for _ in range(100)]
    await asyncio.sleep(0)
    assert entered == 1
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(r == "ok" for r in results) == 1
    assert sum(isinstance(r, CircuitBreakerOpenError) for r in results) == 99
    assert breaker.state is CircuitState.CLOSED


def test_without_a_base_every_open_period_is_the_recovery_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 60.0, clock=clock)  # the constructor's default: no escalation
    assert breaker.base_timeout == 60.0
    breaker.allow().failure(BOOM)
    for _ in range(3):
        assert _waits_until_probe(breaker, clock) == 60
        breaker.allow().failure(BOOM)


def test_a_base_above_the_cap_is_the_cap() -> None:
    breaker = CircuitBreaker(1, 2.0, base_timeout=5.0, clock=FakeClock())
    assert breaker.base_timeout == 2.0
    assert breaker.open_period == 2.0


@pytest.mark.parametrize("base", [0.0, -1.0, float("nan")])
def test_a_base_must_be_positive(base: float) -> None:
    with pytest.raises(ValueError, match="base_timeout must be > 0"):
        CircuitBreaker(1, 60.0, base_timeout=base)
