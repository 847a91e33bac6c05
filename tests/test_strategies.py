"""The five orderings, alone and through the router."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from greenlang_llm import GenerationRequest, LLMRouter, RoutingStrategy
from greenlang_llm.providers import BaseLLMProvider, FakeProvider
from greenlang_llm.strategies import make_strategy, parse_strategy


@dataclass
class Cand:
    name: str
    priority: int
    order: int
    provider: BaseLLMProvider
    latency_ewma_ms: float | None = None


def _cands(*specs: tuple[str, int]) -> list[Cand]:
    return [Cand(name, prio, i, FakeProvider()) for i, (name, prio) in enumerate(specs)]


REQ = GenerationRequest(prompt="hello")


def _names(items: list[Cand]) -> list[str]:
    return [c.name for c in items]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("priority", RoutingStrategy.PRIORITY),
        ("LEAST_COST", RoutingStrategy.LEAST_COST),
        ("least-latency", RoutingStrategy.LEAST_LATENCY),
        (" round_robin ", RoutingStrategy.ROUND_ROBIN),
        (RoutingStrategy.RANDOM, RoutingStrategy.RANDOM),
    ],
)
def test_parse_strategy_accepts_config_names(raw: str, expected: RoutingStrategy) -> None:
    assert parse_strategy(raw) is expected


def test_parse_strategy_names_the_choices_on_error() -> None:
    with pytest.raises(ValueError, match="least_cost"):
        parse_strategy("cheapest")


def test_priority_orders_by_priority_then_registration() -> None:
    cands = _cands(("c", 2), ("a", 1), ("b", 1), ("d", 3))
    assert _names(make_strategy("priority").order([cands], REQ)) == ["a", "b", "c", "d"]


def test_tiers_stay_apart_whatever_the_strategy() -> None:
    healthy = _cands(("a", 2), ("b", 3))
    last_resort = [Cand("z", 1, 9, FakeProvider())]
    for kind in RoutingStrategy:
        ordered = _names(make_strategy(kind, random.Random(1)).order([healthy, last_resort], REQ))
        assert ordered[-1] == "z"
        assert sorted(ordered[:2]) == ["a", "b"]


def test_least_cost_flips_when_the_request_shape_changes() -> None:
    input_cheap = Cand("input_cheap", 1, 0, FakeProvider(price_per_1k=(0.001, 0.1)))
    output_cheap = Cand("output_cheap", 1, 1, FakeProvider(price_per_1k=(0.1, 0.001)))
    strategy = make_strategy(RoutingStrategy.LEAST_COST)
    long_prompt = GenerationRequest(prompt="word " * 1000, max_tokens=10)
    long_answer = GenerationRequest(prompt="word", max_tokens=1000)
    assert _names(strategy.order([[output_cheap, input_cheap]], long_prompt))[0] == "input_cheap"
    assert _names(strategy.order([[input_cheap, output_cheap]], long_answer))[0] == "output_cheap"


def test_least_cost_routes_unpriceable_providers_last() -> None:
    class Broken(FakeProvider):
        def estimate_cost(self, request: GenerationRequest) -> float:
            raise RuntimeError("no catalog")

    cands = [Cand("broken", 1, 0, Broken()), Cand("priced", 2, 1, FakeProvider(price_per_1k=(1, 1)))]
    assert _names(make_strategy("least_cost").order([cands], REQ)) == ["priced", "broken"]


def test_least_latency_tries_unmeasured_first_then_fastest() -> None:
    cands = _cands(("slow", 1), ("new", 2), ("fast", 3))
    cands[0].latency_ewma_ms = 900.0
    cands[2].latency_ewma_ms = 20.0
    assert _names(make_strategy("least_latency").order([cands], REQ)) == ["new", "fast", "slow"]


def test_round_robin_rotates_in_registration_order() -> None:
    strategy = make_strategy("round_robin")
    cands = _cands(("a", 3), ("b", 1), ("c", 2))
    firsts = [_names(strategy.order([cands], REQ)) for _ in range(4)]
    assert firsts == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_random_is_reproducible_with_a_seeded_rng() -> None:
    cands = _cands(("a", 1), ("b", 1), ("c", 1))
    one = make_strategy("random", random.Random(42))
    two = make_strategy("random", random.Random(42))
    runs = [_names(one.order([cands], REQ)) for _ in range(20)]
    assert runs == [_names(two.order([cands], REQ)) for _ in range(20)]
    assert {r[0] for r in runs} == {"a", "b", "c"}


async def test_round_robin_is_exact_over_1000_concurrent_calls() -> None:
    router = LLMRouter(strategy=RoutingStrategy.ROUND_ROBIN)
    in_flight = peak = 0

    async def overlapping(_: float) -> None:  # every call yields, so all 1,000 are in flight at once
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1

    for name in ("a", "b", "c"):
        router.register_provider(name, FakeProvider(latency=1.0, sleep=overlapping))
    responses = await asyncio.gather(*(router.generate(REQ) for _ in range(1000)))
    assert peak == 1000
    assert Counter(r.provider for r in responses) == {"a": 334, "b": 333, "c": 333}
    assert {n: m["total_requests"] for n, m in router.get_metrics()["providers"].items()} == {
        "a": 334, "b": 333, "c": 333,
    }


async def test_least_cost_router_picks_cheapest_for_each_request() -> None:
    router = LLMRouter(strategy="least_cost")
    router.register_provider("input_cheap", FakeProvider(price_per_1k=(0.001, 0.1)), priority=1)
    router.register_provider("output_cheap", FakeProvider(price_per_1k=(0.1, 0.001)), priority=2)
    long_prompt = await router.generate(GenerationRequest(prompt="word " * 1000, max_tokens=10))
    long_answer = await router.generate(GenerationRequest(prompt="word", max_tokens=1000))
    assert (long_prompt.provider, long_answer.provider) == ("input_cheap", "output_cheap")


async def test_least_latency_router_learns_from_observed_latency() -> None:
    now = [0.0]

    async def advance(seconds: float) -> None:
        now[0] += seconds

    router = LLMRouter(strategy=RoutingStrategy.LEAST_LATENCY, clock=lambda: now[0])
    router.register_provider("slow", FakeProvider(latency=0.5, sleep=advance))
    router.register_provider("fast", FakeProvider(latency=0.05, sleep=advance))
    first_two = [(await router.generate(REQ)).provider for _ in range(2)]
    assert first_two == ["slow", "fast"]  # each unmeasured provider gets measured
    later = [(await router.generate(REQ)).provider for _ in range(5)]
    assert later == ["fast"] * 5
    metrics = router.get_metrics()["providers"]
    assert metrics["fast"]["avg_latency_ms"] == pytest.approx(50.0)
    assert metrics["slow"]["latency_ewma_ms"] == pytest.approx(500.0)


async def test_random_router_with_seeded_rng_spreads_and_repeats() -> None:
    async def run() -> list[str]:
        router = LLMRouter(strategy=RoutingStrategy.RANDOM, rng=random.Random(7))
        for name in ("a", "b", "c"):
            router.register_provider(name, FakeProvider())
        return [(await router.generate(REQ)).provider for _ in range(300)]

    first = await run()
    assert first == await run()
    assert all(80 <= n <= 120 for n in Counter(first).values())
