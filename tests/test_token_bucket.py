"""The one token bucket behind RateLimiter and the gateway's per-key limits, on a virtual clock."""

from __future__ import annotations

import pytest

from greenlang_llm.token_bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_and_refills_at_the_per_minute_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    assert bucket.try_take(60) is None
    assert bucket.try_take(1) == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.try_take(1) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_take(1) is None


def test_burst_seconds_sets_the_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(120, clock, burst_seconds=5.0)
    assert bucket.capacity == pytest.approx(10.0)
    clock.now += 1000
    bucket.refill(clock())
    assert bucket.level == pytest.approx(10.0)


def test_a_charge_goes_into_debt_that_later_callers_wait_out() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    bucket.charge(90)
    assert bucket.level == pytest.approx(-30.0)
    wait = bucket.wait_for_positive()
    assert wait == pytest.approx(30.0)
    clock.now += 30.001
    assert bucket.wait_for_positive() is None


def test_wait_for_uses_the_callers_clock_reading() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    bucket.level = 0.0
    bucket.refill(2.0)
    assert bucket.level == pytest.approx(2.0)
    assert bucket.wait_for(5.0) == pytest.approx(3.0)
    assert bucket.wait_for(1.0) == 0.0


def test_an_earlier_clock_reading_refills_nothing() -> None:
    clock = Clock()
    clock.now = 10.0
    bucket = TokenBucket(60, clock)
    bucket.level = 0.0
    bucket.refill(5.0)
    assert (bucket.level, bucket.stamp) == (0.0, 10.0)


@pytest.mark.parametrize("per_minute", [1, 31, 123, 245, 500, 1000])
def test_an_integer_limit_is_a_whole_burst_exactly(per_minute: int) -> None:
    """A key with rpm=123 may burst 123 requests, not 122 (rate x 60 s is 122.99999999999999 in floats)."""
    bucket = TokenBucket(per_minute, Clock())
    assert bucket.capacity == per_minute
    assert sum(bucket.try_take() is None for _ in range(per_minute + 10)) == per_minute


def test_every_integer_limit_up_to_a_hundred_thousand_has_an_exact_capacity() -> None:
    assert all(TokenBucket(n, Clock()).capacity == n for n in range(1, 100_001))
