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

import pytest
from streams_support import CLAUDE, GPT, collect, provider_for, running_sim

from greenlang_llm._types import GenerationRequest
from greenlang_llm.llm_router import LLMRouter
from greenlang_llm.simulator.faults import FaultRule

DOWN = 6.2
EVERY = 0.4
BASE = 0.5
CAP = 6.0
REQUEST = GenerationRequest(prompt="Are you back?", max_tokens=16, timeout=2.0)


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
        sim.faults.add(FaultRule("down", model=primary, lasts=DOWN))
        start = time.monotonic()
        recovered_at = start + DOWN
        answers: list[tuple[float, str]] = []
        period_at_recovery = None
        try:
            while True:
                sent = time.monotonic()
                if period_at_recovery is None and sent >= recovered_at:
                    period_at_recovery = breaker.open_period
                if stream:
                    chunks = await collect(router.stream(REQUEST))
                    assert "".join(c.text for c in chunks)
                    provider = chunks[-1].provider
                else:
                    response = await router.generate(REQUEST)
                    assert response.text
                    provider = response.provider
                answers.append((sent - start, provider))
                if provider == "primary" and sent >= recovered_at:
                    break
                assert sent - start < DOWN + CAP, f"the primary was not used again: {answers}"
                await asyncio.sleep(max(0.0, sent + EVERY - time.monotonic()))
        finally:
            await router.close()
    down_answers = [p for t, p in answers if t < DOWN - 0.05]
    assert down_answers[0] == "fallback"  # the first request met the outage and failed over
    assert set(down_answers) == {"fallback"}
    delay = answers[-1][0] - DOWN
    assert delay <= CAP / 2, answers
    assert period_at_recovery is not None
    assert delay <= period_at_recovery + EVERY, answers  # the bound docs/routing.md states
    metrics = router.get_metrics()
    assert metrics["global"]["failed_requests"] == 0  # every request answered
    escalations = [t.reason for name, t in router.breaker_transitions if "next trial in" in t.reason]
    assert escalations, "the primary's trials during the outage failed and escalated"
