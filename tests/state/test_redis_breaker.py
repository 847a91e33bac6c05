"""RedisBreakerState on a real Redis: CircuitBreakers in two "replicas" share one state per provider.

``sync_interval=0`` makes every decision ask Redis, so the tests need no waiting; the recovery
timeout is made to have passed by moving ``opened`` back in Redis, not by sleeping.
"""

from __future__ import annotations

from typing import Any

import pytest

from greenlang_llm._errors import CircuitBreakerOpenError, ServiceUnavailableError
from greenlang_llm.circuit_breaker import CircuitBreaker, CircuitState
from greenlang_llm.state.redis_breaker import redis_breaker_factory

pytestmark = pytest.mark.redis

BOOM = ServiceUnavailableError("upstream 503")


def pair(client: Any, prefix: str, **options: Any) -> tuple[CircuitBreaker, CircuitBreaker]:
    factory = redis_breaker_factory(client, prefix, **{"sync_interval": 0.0, **options})
    return tuple(  # type: ignore[return-value]
        CircuitBreaker(3, 60.0, name="p", store=factory("p", 3, 60.0)) for _ in range(2)
    )


def test_failures_behind_one_replica_open_it_for_the_other(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix)
    for _ in range(3):
        a.allow().failure(BOOM)
    assert a.state is CircuitState.OPEN
    assert not b.is_available()
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.allow()
    assert 59 < info.value.retry_after <= 60


def test_failures_from_both_replicas_count_together(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix)
    a.allow().failure(BOOM)
    b.allow().failure(BOOM)
    assert a.state is CircuitState.CLOSED
    b.allow().failure(BOOM)
    assert a.is_available() is False


def test_exactly_one_probe_across_replicas(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix)
    for _ in range(3):
        a.allow().failure(BOOM)
    redis_client.hset(f"{prefix}cb:p", "opened", 0)  # the recovery timeout has passed
    probe = b.try_allow()
    assert probe is not None
    assert probe.is_probe
    assert a.try_allow() is None  # the probe is out: nobody else goes
    probe.success()
    assert a.state is CircuitState.CLOSED
    assert a.try_allow() is not None


def test_a_released_probe_frees_the_slot_for_any_replica(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix)
    for _ in range(3):
        b.allow().failure(BOOM)
    redis_client.hset(f"{prefix}cb:p", "opened", 0)
    probe = a.try_allow()
    assert probe is not None
    probe.release()  # cancelled: no verdict
    second = b.try_allow()
    assert second is not None
    assert second.is_probe
    second.failure(BOOM)
    assert a.state is CircuitState.OPEN


def test_a_call_admitted_before_the_opening_cannot_close_it(redis_client: Any, prefix: str) -> None:
    a, b = pair(redis_client, prefix)
    slow = b.allow()
    for _ in range(3):
        a.allow().failure(BOOM)
    slow.success()
    assert b.state is CircuitState.OPEN


def test_closed_hot_path_needs_no_round_trip(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = redis_breaker_factory(redis_client, prefix, sync_interval=3600.0)
    breaker = CircuitBreaker(3, 60.0, store=factory("p", 3, 60.0))
    breaker.allow().success()  # first use syncs
    store = breaker._store

    def no_redis(**kw: Any) -> Any:
        raise AssertionError("Redis was asked")

    monkeypatch.setattr(store, "_script", no_redis)
    for _ in range(10):
        breaker.allow().success()


def test_outage_falls_back_to_a_local_breaker(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair(redis_client, prefix)

    def down(**kw: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(a._store, "_script", down)
    for _ in range(3):
        a.allow().failure(BOOM)
    assert a.state is CircuitState.OPEN  # still protects the provider, locally
    assert not a.is_available()


async def test_routers_in_two_replicas_share_the_breaker(redis_client: Any, prefix: str) -> None:
    from greenlang_llm import AllCircuitsOpenError, GenerationRequest, LLMRouter
    from greenlang_llm._errors import AllProvidersFailedError
    from greenlang_llm.providers.fake import FakeProvider

    factory = redis_breaker_factory(redis_client, prefix, sync_interval=0.0)
    failing = FakeProvider("m", script=[BOOM] * 3)
    healthy = FakeProvider("m")
    routers = []
    for provider in (failing, healthy):
        router = LLMRouter(circuit_breaker_threshold=3, max_failovers=0, breaker_store=factory)
        router.register_provider("p", provider)
        routers.append(router)
    for _ in range(3):
        with pytest.raises(AllProvidersFailedError):
            await routers[0].generate(GenerationRequest(prompt="x"))
    with pytest.raises(AllCircuitsOpenError):
        await routers[1].generate(GenerationRequest(prompt="x"))
    assert healthy.calls == 0  # refused without calling the provider


def test_the_escalation_is_shared_by_the_replicas(redis_client: Any, prefix: str) -> None:
    factory = redis_breaker_factory(redis_client, prefix, sync_interval=0.0)
    a, b = (CircuitBreaker(3, 60.0, name="p", base_timeout=5.0, store=factory("p", 3, 60.0, 5.0))
            for _ in range(2))
    for _ in range(3):
        a.allow().failure(BOOM)
    assert 4 < b.retry_after() <= 5  # the first open period is the base
    periods = []
    for replica in (b, a, b, a, b):  # each failed trial, whichever replica ran it, lengthens the wait
        redis_client.hset(f"{prefix}cb:p", "opened", 0)  # this period has passed
        probe = replica.try_allow()
        assert probe is not None
        assert probe.is_probe
        assert (b if replica is a else a).try_allow() is None  # one trial per period across replicas
        probe.failure(BOOM)
        other = b if replica is a else a
        periods.append((other.retry_after(), other.open_period))
    assert [period for _, period in periods] == [10, 15, 20, 25, 30]
    assert all(period - 1 < wait <= period for wait, period in periods)
    redis_client.hset(f"{prefix}cb:p", "opened", 0)
    a.allow().success()  # a trial passed on one replica: the escalation resets for both
    assert b.state is CircuitState.CLOSED
    for _ in range(3):
        b.allow().failure(BOOM)
    assert 4 < a.retry_after() <= 5
    assert a.open_period == 5


def test_a_replica_that_loses_redis_keeps_escalating_locally(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = redis_breaker_factory(redis_client, prefix, sync_interval=0.0)
    clock = [100.0]
    store = factory("p", 1, 60.0, 5.0)
    breaker = CircuitBreaker(1, 60.0, name="p", base_timeout=5.0, store=store, clock=lambda: clock[0])

    def down(**kw: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(store, "_script", down)
    monkeypatch.setattr(store, "_clock", lambda: clock[0])
    breaker.allow().failure(BOOM)
    assert breaker.retry_after() == pytest.approx(5.0)
    clock[0] += 5
    breaker.allow().failure(BOOM)
    assert breaker.open_period == 10
