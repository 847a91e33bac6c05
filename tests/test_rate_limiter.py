"""Token buckets, fail-fast, max_wait, cool-downs and fairness — all on a virtual clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

import greenlang_llm
from greenlang_llm import RateLimitError
from greenlang_llm.rate_limiter import RateLimiter

T = TypeVar("T")


class StepTime:
    """Sequential fake time: ``sleep`` records the wait and advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class VirtualTime:
    """Concurrent fake time: sleepers wake in time order while ``run`` advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, next(self._seq), future))
        await future

    async def _settle(self) -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    async def advance_to(self, when: float) -> None:
        await self._settle()
        while self._timers and self._timers[0][0] <= when:
            at, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            if not future.done():
                future.set_result(None)
            await self._settle()
        self.now = max(self.now, when)

    async def run(self, *coros: Coroutine[Any, Any, T]) -> list[T]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        for _ in range(100_000):
            await self._settle()
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            assert self._timers, "tasks are blocked on something other than the virtual clock"
            await self.advance_to(self._timers[0][0])
        raise AssertionError("virtual time did not converge")


def limiter(time: StepTime | VirtualTime, **kwargs: Any) -> RateLimiter:
    return RateLimiter(clock=time.clock, sleep=time.sleep, **kwargs)


async def test_unlimited_never_waits() -> None:
    t = StepTime()
    rl = limiter(t)
    for _ in range(1000):
        assert await rl.acquire(10_000) == 0.0
    assert t.sleeps == []
    assert rl.available() == (None, None)


async def test_requests_per_minute_allow_a_full_bucket_then_pace() -> None:
    t = StepTime()
    rl = limiter(t, requests_per_minute=60)
    for _ in range(60):
        await rl.acquire()
    assert t.sleeps == []
    await rl.acquire()
    assert t.sleeps == [pytest.approx(1.0)]


async def test_burst_seconds_shrinks_the_bucket_for_smooth_pacing() -> None:
    t = StepTime()
    rl = limiter(t, requests_per_minute=120, burst_seconds=0.5)  # capacity 1, 2 per second
    waits = [await rl.acquire() for _ in range(4)]
    assert waits == [0.0, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5)]


async def test_tokens_per_minute_wait_is_exact() -> None:
    t = StepTime()
    rl = limiter(t, tokens_per_minute=6000)  # 100 tokens/s, capacity 6000
    await rl.acquire(6000)
    await rl.acquire(250)
    assert t.sleeps == [pytest.approx(2.5)]


async def test_fail_fast_raises_with_retry_after_and_takes_nothing() -> None:
    t = StepTime()
    rl = limiter(t, requests_per_minute=60, burst_seconds=1)
    await rl.acquire()
    with pytest.raises(RateLimitError) as info:
        await rl.acquire(wait=False)
    assert info.value.retry_after == pytest.approx(1.0)
    assert info.value.retryable
    t.now = 1.0
    assert await rl.acquire(wait=False) == 0.0  # the failed attempt did not consume the slot
    assert t.sleeps == []


async def test_max_wait_turns_a_long_wait_into_an_error() -> None:
    t = StepTime()
    rl = limiter(t, tokens_per_minute=60, max_wait=5.0)  # 1 token/s
    await rl.acquire(60)
    assert await rl.acquire(5) == pytest.approx(5.0)  # exactly max_wait: waits
    with pytest.raises(RateLimitError) as info:
        await rl.acquire(6)
    assert info.value.retry_after == pytest.approx(6.0)


async def test_cool_down_blocks_until_it_ends() -> None:
    t = StepTime()
    rl = limiter(t, requests_per_minute=600, provider="openai")
    rl.cool_down(11.0)
    assert rl.cooling_down_for() == pytest.approx(11.0)
    with pytest.raises(RateLimitError) as info:
        await rl.acquire(wait=False)
    assert info.value.retry_after == pytest.approx(11.0)
    assert info.value.provider == "openai"
    assert await rl.acquire() == pytest.approx(11.0)
    assert rl.cooling_down_for() == 0.0


async def test_cool_down_is_never_shortened_and_ignores_empty_values() -> None:
    t = StepTime()
    rl = limiter(t)
    rl.cool_down(10)
    rl.cool_down(2)
    rl.cool_down(None)
    rl.cool_down(0)
    assert rl.cooling_down_for() == pytest.approx(10)


async def test_cool_down_applies_to_unlimited_limiters_too() -> None:
    t = StepTime()
    rl = limiter(t)
    rl.cool_down(3)
    assert await rl.acquire() == pytest.approx(3)


async def test_concurrent_waiters_are_served_in_arrival_order() -> None:
    vt = VirtualTime()
    rl = limiter(vt, requests_per_minute=60, burst_seconds=1)  # one per second
    finished: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await rl.acquire()
        finished.append((i, vt.now))

    await vt.run(*(caller(i) for i in range(10)))
    assert [i for i, _ in finished] == list(range(10))
    assert [at for _, at in finished] == pytest.approx([float(i) for i in range(10)])


async def test_a_big_request_does_not_starve_or_get_overtaken() -> None:
    vt = VirtualTime()
    rl = limiter(vt, tokens_per_minute=600, burst_seconds=1)  # 10 tokens/s, capacity 10
    order: list[str] = []

    async def caller(name: str, tokens: int) -> None:
        await rl.acquire(tokens)
        order.append(name)

    await vt.run(caller("small-1", 10), caller("big", 10), caller("small-2", 1))
    assert order == ["small-1", "big", "small-2"]


async def test_many_concurrent_callers_never_exceed_the_rate() -> None:
    vt = VirtualTime()
    rl = limiter(vt, requests_per_minute=120, tokens_per_minute=6000)  # 2 req/s, 100 tok/s
    grants: list[tuple[float, int]] = []

    async def caller(i: int) -> None:
        tokens = 50 + (i * 37) % 400
        await rl.acquire(tokens)
        grants.append((vt.now, tokens))

    await vt.run(*(caller(i) for i in range(300)))
    assert len(grants) == 300
    used_tokens = 0
    for used_requests, (at, tokens) in enumerate(sorted(grants), start=1):
        used_tokens += tokens
        assert used_tokens <= 6000 + 100 * at + 1e-6
        assert used_requests <= 120 + 2 * at + 1e-6


async def test_cool_down_during_a_wait_pushes_queued_callers_back() -> None:
    vt = VirtualTime()
    rl = limiter(vt, requests_per_minute=60, burst_seconds=1)
    done: list[float] = []

    async def caller() -> None:
        await rl.acquire()
        done.append(vt.now)

    async def upstream_429_at_half_second() -> None:
        await vt.sleep(0.5)
        rl.cool_down(4.0)

    await vt.run(caller(), caller(), upstream_429_at_half_second())
    assert done == pytest.approx([0.0, 4.5])


async def test_a_cancelled_waiter_gives_its_share_back() -> None:
    vt = VirtualTime()
    rl = limiter(vt, requests_per_minute=60, burst_seconds=1)
    await rl.acquire()
    waiter = asyncio.ensure_future(rl.acquire())
    await vt.advance_to(0.0)
    assert rl.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert rl.waiting == 0
    vt.now = 1.0
    assert rl.try_acquire()  # without the refund the slot would still belong to the cancelled waiter


async def test_an_oversized_request_goes_through_on_a_full_bucket_and_leaves_a_debt() -> None:
    t = StepTime()
    rl = limiter(t, tokens_per_minute=6000)  # capacity 6000, 100/s
    assert await rl.acquire(9000) == 0.0
    await rl.acquire(1)
    assert t.sleeps == [pytest.approx(30.01)]


async def test_adjust_tokens_corrects_an_estimate() -> None:
    t = StepTime()
    rl = limiter(t, tokens_per_minute=600)  # 10/s
    await rl.acquire(600)  # estimated the whole bucket
    rl.adjust_tokens(-400)  # the call used 200
    assert rl.available() == (None, pytest.approx(400))
    rl.adjust_tokens(-10_000)
    assert rl.available() == (None, pytest.approx(600))  # never above capacity


def test_try_acquire_takes_only_what_is_there() -> None:
    t = StepTime()
    rl = limiter(t, requests_per_minute=2, burst_seconds=60)
    assert rl.try_acquire()
    assert rl.try_acquire()
    assert not rl.try_acquire()


@pytest.mark.parametrize(
    "kwargs",
    [{"requests_per_minute": 0}, {"tokens_per_minute": -5}, {"max_wait": -1}, {"burst_seconds": 0},
     {"requests_per_minute": True}],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        RateLimiter(**kwargs)


async def test_negative_token_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="tokens"):
        await RateLimiter().acquire(-1)


def test_seed_style_import_paths() -> None:
    assert greenlang_llm.RateLimiter is RateLimiter
    assert "RateLimiter" in repr(RateLimiter(requests_per_minute=60))


async def test_default_clock_and_sleep_work_without_injection() -> None:
    rl = RateLimiter(requests_per_minute=60, tokens_per_minute=1000)
    assert await rl.acquire(100) == 0.0
    requests, tokens = rl.available()
    assert requests == pytest.approx(59, abs=0.1)
    assert tokens == pytest.approx(900, abs=1)
