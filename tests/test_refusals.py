"""Refusals are not outages (issue #19, part 5): content-filter and other client errors.

A content-filter refusal (or a bad request, or a prompt too long) is returned after one attempt,
is booked as the provider's refusal (``RouteEntry.refusals``, ``errors_by_type``), not as a
failure, and never moves its breaker; an outage in between still opens it. Through the library
on the simulator, counting its requests (the gateway: tests/gateway/test_refusals_gateway.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from greenlang_llm import LLMRouter
from greenlang_llm import _errors as errors
from greenlang_llm._types import GenerationRequest
from greenlang_llm.circuit_breaker import CircuitState
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule

KEY = "sk-test-canary"
REQ = GenerationRequest(prompt="Something the filter dislikes", max_tokens=20)
THRESHOLD = 3


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(seed=1)) as simulator:
        yield simulator


def router(sim: Simulator) -> LLMRouter:
    r = LLMRouter(circuit_breaker_threshold=THRESHOLD)
    for i, model in enumerate(("first", "second")):
        r.register_provider(model, OpenAIProvider(
            model, api_key=KEY, max_retries=2, base_delay=0.01, max_delay=0.01, base_url=sim.openai_base_url,
            timeout=2.0), priority=i)
    return r


async def drain(r: LLMRouter) -> None:
    async for _ in r.stream(REQ):
        pass


@pytest.mark.parametrize(("kind", "error"), [
    ("content_policy", errors.ContentPolicyError),
    ("bad_request", errors.InvalidRequestError),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_refusals_return_after_one_attempt_and_never_open_the_breaker(
        sim: Simulator, kind: str, error: type[Exception], stream: bool) -> None:
    sim.faults.add(FaultRule(kind, model="first"))
    async with router(sim) as r:
        for _ in range(3 * THRESHOLD):
            with pytest.raises(error):
                await (drain(r) if stream else r.generate(REQ))
        breaker = r.circuit_breaker("first")
        assert breaker is not None
        assert (breaker.state, breaker.consecutive_failures) == (CircuitState.CLOSED, 0)
        metrics = r.get_metrics()["providers"]["first"]
        assert metrics["failed_requests"] == 0  # not an outage
        assert metrics["errors_by_type"] == {error.__name__: 3 * THRESHOLD}
        assert metrics["refusals"] == 3 * THRESHOLD
    assert sim.stats.by_model["first"] == 3 * THRESHOLD  # one request each: no retry, no failover
    assert sim.stats.by_model.get("second", 0) == 0


async def test_a_refusal_between_outages_does_not_hide_them(sim: Simulator) -> None:
    async with router(sim) as r:
        breaker = r.circuit_breaker("first")
        assert breaker is not None
        for i in range(THRESHOLD):
            sim.faults.set_rules([FaultRule("content_policy" if i == 1 else "http_503", model="first")])
            with contextlib.suppress(errors.ContentPolicyError):
                await r.generate(REQ)
        # 503, refusal, 503: two outages in a row as far as the breaker is concerned
        assert breaker.consecutive_failures == THRESHOLD - 1
        metrics = r.get_metrics()["providers"]["first"]
        assert (metrics["failed_requests"], metrics["refusals"]) == (THRESHOLD - 1, 1)


async def test_a_404_is_a_failure_of_the_providers_config_not_a_refusal(sim: Simulator) -> None:
    """A model the provider does not have is its configuration's fault, as a rejected key is."""
    sim.faults.add(FaultRule("not_found", model="first"))
    async with router(sim) as r:
        with pytest.raises(errors.NotFoundError):
            await r.generate(REQ)
        metrics = r.get_metrics()["providers"]["first"]
        assert (metrics["failed_requests"], metrics["refusals"]) == (1, 0)
