"""Shared GCRA buckets on a real Redis: one limit across "replicas", debt, and the local fallback."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from greenlang_llm.state.redis_limits import RedisLimits

pytestmark = pytest.mark.redis


def test_rpm_is_one_limit_across_replicas(redis_client: Any, prefix: str) -> None:
    a, b = RedisLimits(redis_client, prefix=prefix), RedisLimits(redis_client, prefix=prefix)
    buckets = [a.bucket("key1", 30), b.bucket("key1", 30)]
    admitted: list[int] = []

    def one(i: int) -> None:
        if buckets[i % 2].try_take(1.0) is None:
            admitted.append(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 30  # a full bucket at start, then nothing (refill is 0.5/s)
    wait = buckets[0].try_take(1.0)
    assert wait is not None
    assert 0 < wait <= 2.0


def test_other_keys_have_their_own_bucket(redis_client: Any, prefix: str) -> None:
    limits = RedisLimits(redis_client, prefix=prefix)
    assert limits.bucket("a", 1).try_take() is None
    assert limits.bucket("a", 1).try_take() is not None
    assert limits.bucket("b", 1).try_take() is None


def test_tpm_debt_refuses_until_repaid(redis_client: Any, prefix: str) -> None:
    limits = RedisLimits(redis_client, prefix=prefix, background=False, peek_ttl=0.0)
    tpm = limits.bucket("k", 600)
    assert tpm.wait_for_positive() is None
    tpm.charge(700)  # a call used more than the whole minute: 100 tokens of debt
    wait = tpm.wait_for_positive()
    assert wait is not None
    assert 9.0 < wait <= 10.01
    other = RedisLimits(redis_client, prefix=prefix, background=False, peek_ttl=0.0)
    assert other.bucket("k", 600).wait_for_positive() is not None  # another replica sees the debt


def test_outage_falls_back_to_a_local_share_then_retries(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    limits = RedisLimits(
        redis_client, prefix=prefix, replicas=lambda: 2, retry_s=1.0, clock=lambda: now[0], background=False
    )
    bucket = limits.bucket("k", 10)

    def down(**kw: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(limits, "_script", down)
    taken = sum(bucket.try_take() is None for _ in range(10))
    assert limits.degraded
    assert taken == 5  # half of the limit: never unlimited
    monkeypatch.undo()
    assert bucket.try_take() is not None  # still local until the retry time
    now[0] = 1.5
    assert bucket.try_take() is None  # Redis again (its own bucket is full)
    assert not limits.degraded


def test_charges_travel_with_the_next_check_or_the_flush(redis_client: Any, prefix: str) -> None:
    now = [0.0]
    limits = RedisLimits(
        redis_client, prefix=prefix, clock=lambda: now[0], peek_ttl=0.05, flush_interval=3600
    )
    other = RedisLimits(redis_client, prefix=prefix, background=False, peek_ttl=0.0)
    tpm = limits.bucket("k", 600)
    assert tpm.wait_for_positive() is None
    tpm.charge(700)
    assert tpm.wait_for_positive() is None  # the cached answer (no round trip) ...
    assert other.bucket("k", 600).wait_for_positive() is None  # ... and Redis has not seen it yet
    now[0] = 0.06  # the cache is stale: the check carries the charge to Redis
    assert tpm.wait_for_positive() is not None
    assert other.bucket("k", 600).wait_for_positive() is not None
    tpm.charge(100)
    limits.close()  # flushes what is pending
    assert tpm._pending == 0.0


@pytest.mark.parametrize("per_minute", [31, 123, 1000])
def test_the_outage_fallback_keeps_one_bucket_and_its_limit(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch, per_minute: int
) -> None:
    """The local fallback is built once per share, so it keeps its level (and any debt) between calls."""
    limits = RedisLimits(
        redis_client, prefix=prefix, replicas=lambda: 1, retry_s=60.0, clock=lambda: 0.0, background=False
    )
    bucket = limits.bucket("k", per_minute)

    def down(**kw: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(limits, "_script", down)
    taken = sum(bucket.try_take() is None for _ in range(per_minute + 50))
    assert limits.degraded
    assert taken == per_minute
