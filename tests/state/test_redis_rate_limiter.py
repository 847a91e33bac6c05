"""RedisRateLimiter on a real Redis: a provider's RPM/TPM and 429 cool-downs shared by "replicas"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from greenlang_llm._errors import RateLimitError
from greenlang_llm.state.redis_rate_limiter import RedisRateLimiter

pytestmark = pytest.mark.redis


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def pair(client: Any, prefix: str, **kw: Any) -> tuple[RedisRateLimiter, RedisRateLimiter]:
    return (
        RedisRateLimiter(client, "openai-key-1", prefix=prefix, **kw),
        RedisRateLimiter(client, "openai-key-1", prefix=prefix, **kw),
    )


def test_requests_per_minute_are_one_limit_across_replicas(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix, requests_per_minute=3)
    assert [a.try_acquire(), b.try_acquire(), a.try_acquire()] == [True, True, True]
    assert not b.try_acquire()
    assert not a.try_acquire()


async def test_acquire_waits_its_turn_and_refuses_beyond_max_wait(redis_client: Any, prefix: str) -> None:
    sleeps = Sleeps()
    a, b = pair(redis_client, prefix, requests_per_minute=60, sleep=sleeps, max_wait=5.0)
    for _ in range(60):
        assert await a.acquire() == 0.0
    waited = await b.acquire()  # the 61st: one second until a slot frees
    assert 0.9 < waited <= 1.0
    assert sleeps.calls == [waited]
    with pytest.raises(RateLimitError) as info:
        await b.acquire(wait=False)
    assert info.value.retry_after is not None
    assert info.value.retry_after > 1.5  # behind the one already waiting (fair order)


async def test_a_cancelled_waiter_gives_its_share_back(redis_client: Any, prefix: str) -> None:
    async def cancelled(seconds: float) -> None:
        raise asyncio.CancelledError

    a, b = pair(redis_client, prefix, requests_per_minute=1, sleep=cancelled)
    assert await a.acquire() == 0.0
    with pytest.raises(asyncio.CancelledError):
        await b.acquire()
    c = RedisRateLimiter(redis_client, "openai-key-1", prefix=prefix, requests_per_minute=1)
    with pytest.raises(RateLimitError) as info:
        await c.acquire(wait=False)
    assert info.value.retry_after is not None
    assert info.value.retry_after <= 60.0  # only the first one's debt remains, not two


def test_tokens_per_minute_and_adjustment_are_shared(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix, tokens_per_minute=1000)
    assert a.try_acquire(900)
    assert not b.try_acquire(200)
    a.adjust_tokens(-500)  # the call used 500 fewer than reserved
    assert b.try_acquire(200)


def test_a_429_on_one_replica_cools_down_all(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix, requests_per_minute=100)
    a.cool_down(30.0)
    assert not b.try_acquire()
    assert 29.0 < b.cooling_down_for() <= 30.0


def test_outage_falls_back_to_a_local_share(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = RedisRateLimiter(redis_client, "k", prefix=prefix, requests_per_minute=10, replicas=lambda: 2)

    def down(**kw: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(a, "_script", down)
    assert sum(a.try_acquire() for _ in range(10)) == 5
