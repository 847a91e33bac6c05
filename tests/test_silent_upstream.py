"""A silent upstream fails over after one timeout (issue #19, part 1), through the library.

The providers keep their own retries (``max_retries=2``, as the gateway's usual settings), so
before the fix a hung primary cost three timeouts before the router saw it. Now the provider asks
its router call (``retry.FALLBACK``) and gives up at once while another candidate waits; alone,
or as the last candidate, it retries as before. Requests are counted on the simulator; timings
are bounded by ``2 x TIMEOUT`` (one timeout plus a fast fallback).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from greenlang_llm import LLMRouter
from greenlang_llm._errors import ProviderTimeoutError
from greenlang_llm._types import GenerationRequest
from greenlang_llm.providers._http import HttpProvider
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule

KEY = "sk-test-canary"
TIMEOUT = 0.5
REQ = GenerationRequest(prompt="Which way does the river run?", max_tokens=20)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(seed=1)) as simulator:
        yield simulator


def provider(sim: Simulator, api: str, model: str) -> HttpProvider:
    if api == "anthropic":
        return AnthropicProvider(model, api_key=KEY, max_retries=2, base_delay=0.01, max_delay=0.01,
                                 timeout=TIMEOUT, first_token_timeout=TIMEOUT,
                                 base_url=sim.anthropic_base_url)
    return OpenAIProvider(model, api_key=KEY, max_retries=2, base_delay=0.01, max_delay=0.01,
                          timeout=TIMEOUT, first_token_timeout=TIMEOUT, base_url=sim.openai_base_url)


def router(sim: Simulator, api: str, models: tuple[str, ...] = ("primary", "fallback")) -> LLMRouter:
    r = LLMRouter()
    for i, model in enumerate(models):
        r.register_provider(model, provider(sim, api, model), priority=i)
    return r


def calls(sim: Simulator, model: str) -> int:
    """Requests the simulator answered (a hung request is never answered: see ``hung``)."""
    return int(sim.stats.by_model.get(model, 0))


def hung(sim: Simulator, kind: str = "slow") -> int:
    return int(sim.stats.faults[kind])


async def answer(r: LLMRouter, stream: bool) -> str:
    if stream:
        chunks = [c async for c in r.stream(REQ)]
        assert chunks[-1].finish_reason is not None
        return chunks[-1].provider or ""
    return (await r.generate(REQ)).provider


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize(("kind", "stream"), [("slow", False), ("slow", True), ("slow_first_token", True)])
async def test_a_silent_primary_fails_over_after_one_timeout(
        sim: Simulator, api: str, kind: str, stream: bool) -> None:
    sim.faults.add(FaultRule(kind, model="primary", delay=20))
    async with router(sim, api) as r:
        started = time.monotonic()
        provider_name = await answer(r, stream)
        elapsed = time.monotonic() - started
    assert provider_name == "fallback"
    assert (hung(sim, kind), calls(sim, "fallback")) == (1, 1)  # one silent request, not three
    assert TIMEOUT <= elapsed < 2 * TIMEOUT


@pytest.mark.parametrize("stream", [False, True])
async def test_the_last_candidate_still_retries_a_silent_upstream(sim: Simulator, stream: bool) -> None:
    # both hang once: the primary fails over at once, the fallback (last) retries and answers
    sim.faults.add(FaultRule("slow", model="primary", delay=20))
    sim.faults.add(FaultRule("slow", model="fallback", delay=20, times=1))
    async with router(sim, "openai") as r:
        assert await answer(r, stream) == "fallback"
    assert (hung(sim), calls(sim, "fallback")) == (2, 1)


async def test_a_provider_used_alone_retries_a_silent_upstream_as_before(sim: Simulator) -> None:
    sim.faults.add(FaultRule("slow", model="primary", delay=20))
    async with provider(sim, "openai", "primary") as alone:
        with pytest.raises(ProviderTimeoutError):
            await alone.generate(REQ)
    assert hung(sim) == 3  # 1 + max_retries


async def test_after_a_router_call_the_same_provider_alone_retries_again(sim: Simulator) -> None:
    # the router call's answer is per attempt: nothing stale is left in the task's context
    primary = provider(sim, "openai", "primary")
    r = LLMRouter()
    r.register_provider("primary", primary, priority=0)
    r.register_provider("fallback", provider(sim, "openai", "fallback"), priority=1)
    async with r:
        assert (await r.generate(REQ)).provider == "primary"
        sim.faults.add(FaultRule("slow", model="primary", delay=20, times=1))
        assert (await primary.generate(REQ)).text  # alone: the hang is retried, not given up on
    assert (hung(sim), calls(sim, "primary"), calls(sim, "fallback")) == (1, 2, 0)


async def test_a_lone_candidate_retries_while_another_chain_of_the_task_is_mid_attempt(
        sim: Simulator) -> None:
    """An open stream over two providers keeps its chain mid-attempt in this task; a router whose
    only candidate is the same provider must not answer for it: the hang is retried (found in review)."""
    primary = provider(sim, "openai", "primary")
    both = LLMRouter()
    both.register_provider("primary", primary, priority=0)
    both.register_provider("fallback", provider(sim, "openai", "fallback"), priority=1)
    lone = LLMRouter()
    lone.register_provider("primary", primary)
    async with both, lone:
        stream = both.stream(REQ)
        first = await anext(stream)  # the two-provider chain is now mid-attempt on primary
        assert first.provider == "primary"
        sim.faults.add(FaultRule("slow", model="primary", delay=20, times=1))
        assert (await lone.generate(REQ)).provider == "primary"  # retried on its only candidate
        await stream.aclose()
    assert hung(sim) == 1


@pytest.mark.parametrize(("kind", "times"), [("http_500", 1), ("reset", 1), ("rate_limit", 1)])
async def test_try_again_errors_are_still_retried_on_the_same_provider(
        sim: Simulator, kind: str, times: int) -> None:
    sim.faults.add(FaultRule(kind, model="primary", times=times, retry_after=0.05))
    async with router(sim, "openai") as r:
        assert (await r.generate(REQ)).provider == "primary"
    assert (calls(sim, "primary"), calls(sim, "fallback")) == (2, 0)


async def test_a_fallback_behind_an_open_breaker_does_not_count(sim: Simulator) -> None:
    # the only other candidate cannot be called: the primary is the last one, so it retries
    sim.faults.add(FaultRule("slow", model="primary", delay=20, times=1))
    async with router(sim, "openai") as r:
        breaker = r.circuit_breaker("fallback")
        assert breaker is not None
        for _ in range(breaker.failure_threshold):
            breaker.record_failure(ProviderTimeoutError("down"))
        assert (await r.generate(REQ)).provider == "primary"
    assert (hung(sim), calls(sim, "primary"), calls(sim, "fallback")) == (1, 1, 0)
