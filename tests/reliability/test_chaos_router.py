"""Chaos through the library: LLMRouter over the real HTTP providers and a faulty simulator.

Two of three upstream models fail 30% of plain requests (500/503/529, 429 with retry-after,
answers slower than the client timeout, connection resets) and streams additionally meet cuts
before the first token and mid-stream; the third model is healthy. Every plain request must
succeed, within its deadline, with no retry storm (upstream attempts within the bound derived
in docs/reliability.md). A breaker must follow a real outage: open, exactly one half-open
probe, closed after recovery.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from reliability_support import (
    FAULTY,
    FAULTY_ANTHROPIC,
    FAULTY_OPENAI,
    HEALTHY,
    MID_STREAM_KINDS,
    PROVIDER_KEY,
    SEED,
    chaos_rules,
    scaled,
)

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm._errors import AllProvidersFailedError, StreamInterruptedError
from greenlang_llm.circuit_breaker import CircuitState
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.simulator import FaultRule, Simulator, SimulatorConfig

PROVIDER_RETRIES = 1  # P: provider max_retries
ROUTER_RETRIES = 2  # R: router max_failovers (every provider may be tried once)
PROVIDER_TIMEOUT = 1.0  # per HTTP attempt; "slow" faults answer after 30 s
DEADLINE = 10.0  # GenerationRequest.timeout: the whole chain
CONCURRENCY = 50
# Worst case per call (docs/routing.md): sum of (P_i + 1) over the first min(n, R + 1) providers.
WORST_ATTEMPTS_PER_CALL = min(3, ROUTER_RETRIES + 1) * (PROVIDER_RETRIES + 1)


def _providers(sim: Simulator, seed: int) -> list[tuple[str, AnthropicProvider | OpenAIProvider]]:
    common = {
        "api_key": PROVIDER_KEY, "max_retries": PROVIDER_RETRIES, "base_delay": 0.02, "max_delay": 0.1,
        "timeout": PROVIDER_TIMEOUT, "max_retry_after": 1.0,
    }
    return [
        ("flaky-claude", AnthropicProvider(FAULTY_ANTHROPIC, base_url=sim.anthropic_base_url,
                                           rng=random.Random(seed), **common)),
        ("flaky-gpt", OpenAIProvider(FAULTY_OPENAI, base_url=sim.openai_base_url,
                                     rng=random.Random(seed + 1), **common)),
        ("steady", AnthropicProvider(HEALTHY, base_url=sim.anthropic_base_url,
                                     rng=random.Random(seed + 2), **common)),
    ]


def _router(sim: Simulator, **kwargs: object) -> LLMRouter:
    router = LLMRouter(max_failovers=ROUTER_RETRIES, **kwargs)  # type: ignore[arg-type]
    for priority, (name, provider) in enumerate(_providers(sim, SEED), start=1):
        router.register_provider(name, provider, priority=priority)
    return router


@pytest_asyncio.fixture
async def chaos_sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(seed=SEED, faults=chaos_rules(FAULTY))) as sim:
        yield sim


def _request(i: int) -> GenerationRequest:
    return GenerationRequest(prompt=f"chaos request number {i}", max_tokens=32, timeout=DEADLINE)


async def _bounded(n: int, fn: object) -> list[object]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> object:
        async with sem:
            return await fn(i)  # type: ignore[operator]

    return await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)


@pytest.mark.slow
async def test_every_plain_request_succeeds_within_its_deadline_without_a_retry_storm(
    chaos_sim: Simulator,
) -> None:
    n = scaled(400, 2000)
    async with _router(chaos_sim) as router:

        async def call(i: int) -> tuple[str, float]:
            started = time.monotonic()
            response = await router.generate(_request(i))
            assert response.text
            assert response.usage.total_cost_usd > 0
            return response.provider, time.monotonic() - started

        results = await _bounded(n, call)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        latencies = [r[1] for r in results]  # type: ignore[index]
        assert max(latencies) < DEADLINE

        metrics = router.get_metrics()
        stats = chaos_sim.stats
        assert metrics["global"]["successful_requests"] == n
        assert metrics["global"]["failed_requests"] == 0
        assert metrics["global"]["total_requests"] == n
        # faults really fired, and failover really happened
        assert sum(stats.faults.values()) > n * 0.2
        assert metrics["global"]["failover_count"] > 0
        attempts = {name: m["total_requests"] for name, m in metrics["providers"].items()}
        # No retry storm: the hard bound per call, and per provider (P + 1) HTTP attempts per router attempt.
        assert stats.requests <= WORST_ATTEMPTS_PER_CALL * n
        chat = stats.by_path["/v1/chat/completions"]
        messages = stats.by_path["/v1/messages"]
        assert attempts["flaky-gpt"] <= chat <= (PROVIDER_RETRIES + 1) * attempts["flaky-gpt"]
        assert attempts["flaky-claude"] + attempts["steady"] <= messages
        assert messages <= (PROVIDER_RETRIES + 1) * attempts["flaky-claude"] + attempts["steady"]
        assert metrics["providers"]["steady"]["failed_requests"] == 0
        assert all(name != "steady" for name, _ in router.breaker_transitions)
        print(
            f"\nchaos router plain: n={n} upstream={stats.requests} ({stats.requests / n:.2f}/call, "
            f"bound {WORST_ATTEMPTS_PER_CALL}) failovers={metrics['global']['failover_count']} "
            f"faults={dict(stats.faults)} max_latency={max(latencies):.2f}s"
        )


@pytest.mark.slow
async def test_streams_complete_or_fail_over_before_the_first_byte(chaos_sim: Simulator) -> None:
    n = scaled(200, 1000)
    # the contract without mid-stream continuation (tests/continuation/ covers it with continuation on)
    async with _router(chaos_sim, continue_on_failure=False) as router:

        async def consume(i: int) -> tuple[str, str, list[str]]:
            texts: list[str] = []
            providers: set[str] = set()
            started = time.monotonic()
            try:
                async for chunk in router.stream(_request(i)):
                    providers.add(chunk.provider or "?")
                    texts.append(chunk.text)
                    if chunk.finish_reason is not None:
                        assert chunk.usage is not None
                        assert chunk.usage.total_cost_usd > 0
            except StreamInterruptedError as exc:
                # Only after the first byte: exactly what was delivered, never a clean finish.
                partial = exc.partial_text
                assert partial == "".join(texts)
                assert texts, "a failure before the first byte must fail over, not surface"
                assert providers <= {"flaky-claude", "flaky-gpt"}
                return "interrupted", partial, sorted(providers)
            finally:
                assert time.monotonic() - started < DEADLINE
            assert len(providers) == 1  # never two providers' text in one stream
            return "completed", "".join(texts), sorted(providers)

        results = await _bounded(n, consume)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        interrupted = [r for r in results if r[0] == "interrupted"]  # type: ignore[index]
        # Mid-stream cuts and stalls come after exactly 3 tokens, a missing terminal event after the
        # whole 16-token reply; the reply's words are one token each.
        assert all(len(text.split()) in (3, 16) for _, text, _ in interrupted)  # type: ignore[misc]
        stats = chaos_sim.stats
        assert len(interrupted) <= sum(stats.faults[kind] for kind in MID_STREAM_KINDS)
        assert stats.requests <= WORST_ATTEMPTS_PER_CALL * n
        metrics = router.get_metrics()
        assert metrics["global"]["successful_requests"] == n - len(interrupted)
        assert metrics["global"]["failed_requests"] == len(interrupted)
        assert metrics["global"]["cancelled_requests"] == 0
        assert metrics["providers"]["steady"]["failed_requests"] == 0
        print(
            f"\nchaos router streams: n={n} completed={n - len(interrupted)} "
            f"interrupted_mid_stream={len(interrupted)} upstream={stats.requests} faults={dict(stats.faults)}"
        )


async def test_breaker_opens_during_an_outage_probes_once_and_closes_after() -> None:
    recovery = 0.5
    async with Simulator(SimulatorConfig(seed=SEED)) as sim:
        sim.faults.add(FaultRule("down", model=FAULTY_ANTHROPIC))
        async with _router(sim, circuit_breaker_threshold=3, circuit_breaker_timeout=recovery) as router:
            breaker = router.circuit_breaker("flaky-claude")
            assert breaker is not None
            for i in range(3):  # each call: flaky-claude fails (P+1 attempts), flaky-gpt answers
                assert (await router.generate(_request(i))).provider == "flaky-gpt"
            assert breaker.state is CircuitState.OPEN
            before = sim.stats.by_path["/v1/messages"]
            assert before == 3 * (PROVIDER_RETRIES + 1)

            # open: 50 concurrent calls never touch the broken provider
            results = await asyncio.gather(*(router.generate(_request(i)) for i in range(50)))
            assert {r.provider for r in results} == {"flaky-gpt"}
            assert sim.stats.by_path["/v1/messages"] == before

            # the provider comes back; after recovery_timeout exactly one of 50 concurrent calls probes it
            sim.faults.set_rules([])
            await asyncio.sleep(recovery + 0.05)
            results = await asyncio.gather(*(router.generate(_request(i)) for i in range(50)))
            assert sum(r.provider == "flaky-claude" for r in results) == 1
            assert sim.stats.by_path["/v1/messages"] == before + 1
            assert breaker.state is CircuitState.CLOSED
            path = [(t.from_state, t.to_state)
                    for name, t in router.breaker_transitions if name == "flaky-claude"]
            assert path == [
                (CircuitState.CLOSED, CircuitState.OPEN),
                (CircuitState.OPEN, CircuitState.HALF_OPEN),
                (CircuitState.HALF_OPEN, CircuitState.CLOSED),
            ]
            assert (await router.generate(_request(0))).provider == "flaky-claude"


async def test_total_outage_fails_fast_then_recovers_within_recovery_plus_one_health_interval() -> None:
    recovery, interval = 0.6, 0.3
    async with Simulator(SimulatorConfig(seed=SEED)) as sim:
        sim.faults.add(FaultRule("down"))
        async with _router(sim, circuit_breaker_threshold=2, circuit_breaker_timeout=recovery,
                           health_check_interval=interval) as router:
            await router.start_health_monitoring()
            for i in range(2):
                with pytest.raises(AllProvidersFailedError) as info:
                    await router.generate(_request(i))
                assert [name for name, _ in info.value.errors] == ["flaky-claude", "flaky-gpt", "steady"]
            states = {m["circuit_breaker_state"] for m in router.get_metrics()["providers"].values()}
            assert states == {"open"}

            # every breaker open: each call fails at once, without an upstream request
            upstream = sim.stats.by_path["/v1/messages"] + sim.stats.by_path["/v1/chat/completions"]
            started = time.monotonic()
            for i in range(50):
                with pytest.raises(AllProvidersFailedError) as info:
                    await router.generate(_request(i))
                assert info.value.retry_after is not None
                assert 0 < info.value.retry_after <= recovery
            assert time.monotonic() - started < 1.0
            assert sim.stats.by_path["/v1/messages"] + sim.stats.by_path["/v1/chat/completions"] == upstream

            sim.faults.set_rules([])  # providers come back
            back = time.monotonic()
            while True:
                try:
                    response = await router.generate(_request(0))
                    break
                except AllProvidersFailedError:
                    assert time.monotonic() - back <= recovery + interval + 0.5
                    await asyncio.sleep(0.02)
            recovered_in = time.monotonic() - back
            assert recovered_in <= recovery + interval + 0.5
            assert response.provider == "flaky-claude"
            print(f"\ntotal outage (router): recovered {recovered_in:.2f}s after the providers came back "
                  f"(recovery_timeout {recovery}s + health interval {interval}s)")


@pytest.mark.slow
async def test_a_tight_deadline_is_kept_across_provider_retries_and_failover(chaos_sim: Simulator) -> None:
    """A 0.8 s deadline, shorter than the 1 s attempt timeout, against 30 s answers and 1 s
    retry-after waits: the chain must stop in time (a provider never sleeps past it, an attempt is
    cut by it). A call may fail then, but only with the chain's own error, never late."""
    n = scaled(200, 1000)
    deadline, slack = 0.8, 0.4  # slack: event-loop lag with 50 calls in flight on 2 cores
    async with _router(chaos_sim) as router:

        async def call(i: int) -> tuple[bool, float]:
            request = GenerationRequest(prompt=f"tight {i}", max_tokens=32, timeout=deadline)
            started = time.monotonic()
            try:
                await router.generate(request)
                ok = True
            except AllProvidersFailedError as exc:
                attempts = exc.errors
                assert attempts, "an exhausted chain lists its attempts"
                ok = False
            return ok, time.monotonic() - started

        results = await _bounded(n, call)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        latest = max(r[1] for r in results)  # type: ignore[index]
        assert latest <= deadline + slack
        succeeded = sum(1 for r in results if r[0])  # type: ignore[index]
        assert succeeded >= n * 0.8
        assert succeeded < n, "no call met a slow answer: the deadline was never tested"
        metrics = router.get_metrics()["global"]
        assert metrics["successful_requests"] + metrics["failed_requests"] == n
        print(f"\ntight deadline: n={n} deadline={deadline}s succeeded={succeeded} latest={latest:.2f}s")
