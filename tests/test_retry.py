"""Backoff schedule, jitter bounds, retry-after, giving up, deadlines — in no real time."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest

from greenlang_llm import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
)
from greenlang_llm._errors import error_from_http
from greenlang_llm.retry import Backoff, RetryPolicy


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: BaseException | str) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls))
        outcome = outcomes[min(len(calls) - 1, len(outcomes) - 1)]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt, calls


def policy(time: FakeTime, max_retries: int = 4, max_retry_after: float = 60.0) -> RetryPolicy:
    return RetryPolicy(
        max_retries=max_retries, backoff=Backoff(jitter="none"), max_retry_after=max_retry_after,
        sleep=time.sleep, clock=time.clock,
    )


def test_schedule_is_1_2_4_8_then_capped() -> None:
    backoff = Backoff()
    assert [backoff.ceiling(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert Backoff(jitter="none").delay(2) == 4.0


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert Backoff().ceiling(10_000) == 8.0


@pytest.mark.parametrize("n", range(6))
def test_equal_jitter_stays_in_the_upper_half(n: int) -> None:
    backoff = Backoff(jitter="equal")
    ceiling = backoff.ceiling(n)
    assert backoff.delay(n, FixedRandom(0.0)) == ceiling / 2
    assert backoff.delay(n, FixedRandom(0.999999)) == pytest.approx(ceiling, rel=1e-5)
    rng = random.Random(n)
    assert all(ceiling / 2 <= backoff.delay(n, rng) <= ceiling for _ in range(500))


@pytest.mark.parametrize("n", range(6))
def test_full_jitter_stays_between_zero_and_the_ceiling(n: int) -> None:
    backoff = Backoff(jitter="full")
    ceiling = backoff.ceiling(n)
    assert backoff.delay(n, FixedRandom(0.0)) == 0.0
    rng = random.Random(n)
    assert all(0 <= backoff.delay(n, rng) <= ceiling for _ in range(500))


def test_custom_base_and_cap() -> None:
    backoff = Backoff(base_delay=0.5, max_delay=3.0, jitter="none")
    assert [backoff.delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("kwargs", [{"base_delay": -1}, {"max_delay": -1}, {"jitter": "wild"}])
def test_bad_backoff_settings_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_retries", [-1, 1.5, True])
def test_bad_max_retries_is_rejected(max_retries: object) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=max_retries)  # type: ignore[arg-type]


async def test_retries_until_success_waiting_the_schedule() -> None:
    t = FakeTime()
    attempt, calls = scripted(ServiceUnavailableError("down"), ServiceUnavailableError("down"), "ok")
    assert await policy(t).call(attempt) == "ok"
    assert len(calls) == 3
    assert t.sleeps == [1.0, 2.0]


async def test_default_max_retries_means_five_attempts_waiting_1_2_4_8() -> None:
    t = FakeTime()
    error = ServiceUnavailableError("still down")
    attempt, calls = scripted(error)
    with pytest.raises(ServiceUnavailableError) as info:
        await policy(t).call(attempt)
    assert info.value is error
    assert len(calls) == 5
    assert t.sleeps == [1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("max_retries", [0, 1, 2, 7])
async def test_max_retries_counts_retries_after_the_first_attempt(max_retries: int) -> None:
    t = FakeTime()
    attempt, calls = scripted(ServiceUnavailableError("down"))
    with pytest.raises(ServiceUnavailableError):
        await policy(t, max_retries=max_retries).call(attempt)
    assert len(calls) == max_retries + 1


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("bad key"), InvalidRequestError("bad request"),
     error_from_http(500, {"x-should-retry": "false"}), RateLimitError("quota", retryable=False)],
)
async def test_non_retryable_errors_are_raised_at_once(error: ProviderError) -> None:
    t = FakeTime()
    attempt, calls = scripted(error)
    with pytest.raises(ProviderError) as info:
        await policy(t).call(attempt)
    assert info.value is error
    assert len(calls) == 1
    assert t.sleeps == []


async def test_other_exceptions_are_not_retried() -> None:
    t = FakeTime()
    attempt, calls = scripted(KeyError("bug"))
    with pytest.raises(KeyError):
        await policy(t).call(attempt)
    assert len(calls) == 1


async def test_a_longer_retry_after_replaces_the_backoff() -> None:
    t = FakeTime()
    attempt, _ = scripted(RateLimitError("slow", retry_after=11.0), "ok")
    assert await policy(t).call(attempt) == "ok"
    assert t.sleeps == [11.0]


async def test_a_shorter_retry_after_keeps_the_backoff() -> None:
    t = FakeTime()
    attempt, _ = scripted(ServiceUnavailableError("x"), RateLimitError("slow", retry_after=0.372), "ok")
    assert await policy(t).call(attempt) == "ok"
    assert t.sleeps == [1.0, 2.0]


async def test_retry_after_beyond_the_limit_is_raised_not_slept() -> None:
    t = FakeTime()
    error = RateLimitError("come back in 5 minutes", retry_after=300.0)
    attempt, calls = scripted(error, "ok")
    with pytest.raises(RateLimitError):
        await policy(t, max_retry_after=60.0).call(attempt)
    assert len(calls) == 1
    assert t.sleeps == []


async def test_a_wait_past_the_deadline_is_not_taken() -> None:
    t = FakeTime()
    attempt, calls = scripted(ServiceUnavailableError("down"))
    with pytest.raises(ServiceUnavailableError):
        await policy(t).call(attempt, deadline=5.0)
    assert t.sleeps == [1.0, 2.0]  # the next wait (4 s) would end at 7 > 5
    assert len(calls) == 3


async def test_on_retry_sees_each_error_retry_number_and_wait() -> None:
    t = FakeTime()
    seen: list[tuple[str, int, float]] = []
    errors = [ServiceUnavailableError("a"), RateLimitError("b", retry_after=3.0)]
    attempt, _ = scripted(*errors, "ok")
    await policy(t).call(attempt, on_retry=lambda e, n, w: seen.append((e.message, n, w)))
    assert seen == [("a", 0, 1.0), ("b", 1, 3.0)]


async def test_wait_for_gives_up_exactly_at_max_retries() -> None:
    p = RetryPolicy(max_retries=2, backoff=Backoff(jitter="none"))
    error = ServiceUnavailableError("down")
    assert p.wait_for(error, 0) == 1.0
    assert p.wait_for(error, 1) == 2.0
    assert p.wait_for(error, 2) is None


async def test_jittered_waits_use_the_injected_rng() -> None:
    t = FakeTime()
    attempt, _ = scripted(ServiceUnavailableError("down"))
    p = RetryPolicy(sleep=t.sleep, clock=t.clock, rng=FixedRandom(0.5))
    with pytest.raises(ServiceUnavailableError):
        await p.call(attempt)
    assert t.sleeps == [0.75, 1.5, 3.0, 6.0]  # equal jitter: d/2 + d/2 * 0.5


async def test_give_up_raises_a_retryable_error_at_once_and_only_that_one() -> None:
    # a provider gives up on a silent upstream when its router has a fallback waiting (issue #19)
    t = FakeTime()
    hung = ProviderTimeoutError("silent")
    attempt, calls = scripted(ServiceUnavailableError("500 once"), hung, "never")
    with pytest.raises(ProviderTimeoutError) as info:
        await policy(t).call(attempt, give_up=lambda e: isinstance(e, ProviderTimeoutError))
    assert info.value is hung
    assert len(calls) == 2  # the 500 was retried, the timeout was not
    assert t.sleeps == [1.0]


async def test_http_provider_gives_up_on_its_timeout_only_while_its_router_has_a_fallback() -> None:
    from greenlang_llm.providers.openai_provider import OpenAIProvider
    from greenlang_llm.retry import FALLBACK

    class Probe:
        def __init__(self, answer: bool) -> None:
            self.answer = answer
            self.asked: list[object] = []

        def has_fallback(self, provider: object) -> bool:
            self.asked.append(provider)
            return self.answer

    p = OpenAIProvider("m", api_key="sk-test", base_url="http://127.0.0.1:9")
    timeout = ProviderTimeoutError("silent")
    assert not p._hung(timeout)  # used alone: retried as before
    for answer in (True, False):
        probe = Probe(answer)
        token = FALLBACK.set(probe)
        try:
            assert p._hung(timeout) is answer
            assert not p._hung(error_from_http(408))  # the upstream answered: try again
            assert not p._hung(ServiceUnavailableError("500"))
        finally:
            FALLBACK.reset(token)
        assert probe.asked == [p]  # asked only about its own timeout
