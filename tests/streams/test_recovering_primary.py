"""Issue #19 (3): a primary that recovers is used again soon, and nobody waits meanwhile.

The issue's scenario scaled down tenfold: the primary is ``down`` for its first 6.2 s (a simulator
rule with ``lasts``; a little longer than the cap, so that with one fixed 6 s open period the only
trial lands just before the recovery and the next comes a whole cap later, the issue's case), a
request arrives every 0.4 s, the breaker opens after the first failure
and escalates from 0.5 s up to 6 s (the issue's 5 s base and 60 s cap). Every request must be
answered (by the fallback while the primary is down), and the primary must answer again within
half the cap of recovering: the escalation bounds that delay by the open period in progress
when it recovers (docs/routing.md, "Circuit breaker").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import anthropic
import openai
import pytest
from streams_support import (
    ACME_KEY,
    CLAUDE,
    GPT,
    PROVIDER_NAMES,
    collect,
    gateway_stack,
    provider_for,
    running_sim,
)

from greenlang_llm._types import GenerationRequest
from greenlang_llm.circuit_breaker import CircuitBreaker
from greenlang_llm.llm_router import LLMRouter
from greenlang_llm.simulator.faults import FaultRule

DOWN = 6.2
EVERY = 0.4
BASE = 0.5
CAP = 6.0
REQUEST = GenerationRequest(prompt="Are you back?", max_tokens=16, timeout=2.0)


async def _every_request_until_the_primary_is_back(
    ask: Callable[[], Awaitable[str]], breaker: CircuitBreaker
) -> tuple[list[tuple[float, str]], float]:
    """Ask every EVERY s from the outage's start until the primary answers after its recovery.

    Returns (seconds since the start, provider) per answer and the breaker's open period at the
    recovery (the bound docs/routing.md states).
    """
    start = time.monotonic()
    recovered_at = start + DOWN
    answers: list[tuple[float, str]] = []
    period_at_recovery = None
    while True:
        sent = time.monotonic()
        if period_at_recovery is None and sent >= recovered_at:
            period_at_recovery = breaker.open_period
        provider = await ask()  # raises if a request is not answered
        answers.append((sent - start, provider))
        if provider == "primary" and sent >= recovered_at:
            break
        assert sent - start < DOWN + CAP, f"the primary was not used again: {answers}"
        await asyncio.sleep(max(0.0, sent + EVERY - time.monotonic()))
    assert period_at_recovery is not None
    return answers, period_at_recovery


def _check(answers: list[tuple[float, str]], period_at_recovery: float) -> None:
    down_answers = [p for t, p in answers if t < DOWN - 0.05]
    assert down_answers[0] == "fallback"  # the first request met the outage and failed over
    assert set(down_answers) == {"fallback"}
    delay = answers[-1][0] - DOWN
    assert delay <= CAP / 2, answers
    assert delay <= period_at_recovery + EVERY, answers  # the bound docs/routing.md states


@pytest.mark.parametrize(("primary", "fallback", "stream"), [(CLAUDE, GPT, False), (GPT, CLAUDE, True)])
async def test_a_primary_down_for_a_while_answers_again_within_half_the_cap_of_recovering(
    primary: str, fallback: str, stream: bool
) -> None:
    async with running_sim() as sim:
        router = LLMRouter(circuit_breaker_threshold=1, circuit_breaker_timeout=CAP,
                           circuit_breaker_base_timeout=BASE, max_failovers=1)
        router.register_provider("primary", provider_for(sim, primary), priority=1)
        router.register_provider("fallback", provider_for(sim, fallback), priority=2)
        breaker = router.circuit_breaker("primary")
        assert breaker is not None

        async def ask() -> str:
            if stream:
                chunks = await collect(router.stream(REQUEST))
                assert "".join(c.text for c in chunks)
                return chunks[-1].provider
            response = await router.generate(REQUEST)
            assert response.text
            return response.provider

        sim.faults.add(FaultRule("down", model=primary, lasts=DOWN))
        try:
            answers, period = await _every_request_until_the_primary_is_back(ask, breaker)
        finally:
            await router.close()
    _check(answers, period)
    assert router.get_metrics()["global"]["failed_requests"] == 0  # every request answered
    escalations = [t.reason for _, t in router.breaker_transitions if "next trial in" in t.reason]
    assert escalations, "the primary's trials during the outage failed and escalated"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_through_the_gateway_with_the_sdks_a_recovered_primary_is_back_within_half_the_cap(
    api: str,
) -> None:
    """openai SDK plain, anthropic SDK streamed; the route's breaker keys set the scaled periods."""
    route = {"name": "main", "strategy": "priority", "providers": ["claude", "gpt"],
             "circuit_breaker_threshold": 1, "circuit_breaker_timeout": CAP,
             "circuit_breaker_base_timeout": BASE}
    names = {PROVIDER_NAMES[CLAUDE]: "primary", PROVIDER_NAMES[GPT]: "fallback"}
    async with running_sim() as sim, gateway_stack(sim, routes=[route]) as stack:
        breaker = stack.service.targets["main"].router.circuit_breaker("claude")
        assert (breaker.base_timeout, breaker.recovery_timeout) == (BASE, CAP)
        oai = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=ACME_KEY, max_retries=0, timeout=5)
        ant = anthropic.AsyncAnthropic(base_url=stack.url, api_key=ACME_KEY, max_retries=0, timeout=5)
        messages = [{"role": "user", "content": "Are you back?"}]

        async def ask() -> str:
            if api == "openai":
                raw = await oai.chat.completions.with_raw_response.create(
                    model="main", messages=messages, max_completion_tokens=16)  # type: ignore[arg-type]
                assert raw.parse().choices[0].message.content
                return names[raw.headers["x-greenlang-provider"]]
            async with ant.messages.with_streaming_response.create(
                model="main", max_tokens=16, messages=messages, stream=True,  # type: ignore[arg-type]
            ) as response:
                provider = response.headers["x-greenlang-provider"]
                lines = [line async for line in response.iter_lines()]
            assert any("content_block_delta" in line for line in lines)
            assert [line for line in lines if line][-1] == 'data: {"type":"message_stop"}'  # a clean end
            return names[provider]

        sim.faults.add(FaultRule("down", model=CLAUDE, lasts=DOWN))
        try:
            answers, period = await _every_request_until_the_primary_is_back(ask, breaker)
        finally:
            await oai.close()
            await ant.close()
    _check(answers, period)
