"""Library: every way a stream fails ends it honestly, is counted, and fails over while it still can.

Real providers on the simulator, behind an ``LLMRouter``. Mid-stream faults use single-provider routers
(nothing to fail over or continue on), so the caller must see ``StreamInterruptedError`` with exactly
the text it already received; the router counts a failure and the breaker (threshold 1) opens. Faults
before the first delta fail over to the second provider, which answers in full. Timings are asserted
only as generous bounds computed from the configured timeouts.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from streams_support import CLAUDE, GPT, collect, provider_for, running_sim, streams_when_settled

from greenlang_llm._errors import StreamInterruptedError
from greenlang_llm._types import GenerationRequest
from greenlang_llm.llm_router import LLMRouter
from greenlang_llm.providers.stream_guard import StreamGuard
from greenlang_llm.simulator.faults import FaultRule

REQUEST = GenerationRequest(prompt="Tell me about streams")
IDLE = 0.3
FIRST = 0.3
TOKEN_MS = 5
"""Per-token latency where a test needs each token to arrive as its own delta (one network read each)."""
SLACK = 1.5
"""Generous upper bound factor on a configured timeout (the precise overshoot is in bench_streams)."""

MID_STREAM = ["stream_cut", "stream_error", "stall", "invalid_json", "no_terminal"]


def single(provider: object, name: str = "only") -> LLMRouter:
    router = LLMRouter(max_failovers=0, circuit_breaker_threshold=1, circuit_breaker_timeout=60.0)
    router.register_provider(name, provider)  # type: ignore[arg-type]
    return router


def pair(first: object, second: object) -> LLMRouter:
    # room for a same-provider retry before the failover, whatever the error table decides
    router = LLMRouter(max_failovers=3, circuit_breaker_threshold=1, circuit_breaker_timeout=60.0)
    router.register_provider("primary", first, priority=1)  # type: ignore[arg-type]
    router.register_provider("fallback", second, priority=2)  # type: ignore[arg-type]
    return router


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("kind", MID_STREAM)
async def test_a_mid_stream_fault_raises_with_the_delivered_text_and_counts_as_a_failure(
    kind: str, model: str
) -> None:
    async with running_sim() as sim:
        async with provider_for(sim, model) as plain_provider:
            plain = await plain_provider.generate(REQUEST)
        sim.faults.add(FaultRule(kind, after=3, delay=30.0))
        router = single(provider_for(sim, model, idle_timeout=IDLE))
        received: list[str] = []
        with pytest.raises(StreamInterruptedError) as info:
            await collect(router.stream(REQUEST), received)
        metrics = router.get_metrics()
        breaker = router.circuit_breaker("only")
        await router.close()
    assert received
    assert info.value.partial_text == "".join(received)
    words = 16 if kind == "no_terminal" else 3  # the fault comes after 3 tokens (no_terminal: after all 16)
    assert info.value.partial_text == " ".join(plain.text.split()[:words])
    assert metrics["global"]["failed_requests"] == 1
    assert metrics["global"]["successful_requests"] == 0
    assert metrics["providers"]["only"]["failed_requests"] == 1
    assert breaker is not None
    assert breaker.state.value == "open"


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule("http_500"),
        FaultRule("overloaded"),
        FaultRule("rate_limit", retry_after=0.01),
        FaultRule("reset"),
        FaultRule("stream_cut", after=0),
        FaultRule("stream_error", after=0),
        FaultRule("invalid_json", after=0),
    ],
    ids=lambda f: f"{f.kind}-after{f.after}",
)
async def test_a_failure_before_the_first_delta_fails_over_to_a_complete_answer(fault: FaultRule) -> None:
    async with running_sim() as sim:
        sim.faults.add(FaultRule(**{**fault.to_dict(), "model": CLAUDE}))
        router = pair(provider_for(sim, CLAUDE), provider_for(sim, GPT))
        chunks = await collect(router.stream(REQUEST))
        plain = await provider_for(sim, GPT).generate(REQUEST)
        metrics = router.get_metrics()
        await router.close()
    assert {c.provider for c in chunks} == {"fallback"}
    assert "".join(c.text for c in chunks) == plain.text
    assert chunks[-1].usage == plain.usage
    assert metrics["global"]["failover_count"] >= 1
    assert metrics["providers"]["primary"]["failed_requests"] >= 1


@pytest.mark.parametrize("where", ["provider", "route"])
async def test_a_slow_first_token_fails_over_within_first_token_timeout(where: str) -> None:
    async with running_sim() as sim:
        sim.faults.add(FaultRule("slow", model=CLAUDE, delay=30.0))
        if where == "provider":
            primary = provider_for(sim, CLAUDE, first_token_timeout=FIRST)
        else:  # the provider would wait 60 s; the route's guard gives up first
            primary = StreamGuard(provider_for(sim, CLAUDE), first_token_timeout=FIRST)
        router = pair(primary, provider_for(sim, GPT))
        started = time.monotonic()
        chunks = await collect(router.stream(REQUEST))
        elapsed = time.monotonic() - started
        await router.close()
    assert {c.provider for c in chunks} == {"fallback"}
    assert chunks[-1].finish_reason == "stop"
    assert FIRST <= elapsed < FIRST * SLACK + 0.5  # the fallback's own answer is instant here


@pytest.mark.parametrize("where", ["provider", "route"])
@pytest.mark.parametrize("model", [CLAUDE, GPT])
async def test_a_stall_is_cut_after_idle_timeout_not_before_and_not_much_later(
    model: str, where: str
) -> None:
    # tokens 5 ms apart, so each is its own delta and the idle clock restarts on every one
    async with running_sim(token_ms=TOKEN_MS) as sim:
        sim.faults.add(FaultRule("stall", after=4, delay=30.0))
        if where == "provider":
            provider = provider_for(sim, model, idle_timeout=IDLE)
        else:
            provider = StreamGuard(provider_for(sim, model), idle_timeout=IDLE)
        received: list[str] = []
        stamps: list[float] = []

        async def read() -> None:
            async for chunk in provider.stream(REQUEST):
                received.append(chunk.text)
                stamps.append(time.monotonic())

        with pytest.raises(StreamInterruptedError) as info:
            await read()
        gap = time.monotonic() - stamps[-1]
        await provider.close()
        streams = await streams_when_settled(sim)
    assert len(received) == 4
    assert info.value.partial_text == "".join(received)
    assert "idle timeout" in str(info.value)
    assert IDLE <= gap < IDLE * SLACK
    assert streams["open"] == 0  # the stalled upstream connection was closed, not leaked


async def test_buffer_first_tokens_lets_a_cut_inside_the_buffer_fail_over_without_showing_its_text() -> None:
    async with running_sim(token_ms=TOKEN_MS) as sim:  # 3 separate deltas held, not one read of 3 tokens
        sim.faults.add(FaultRule("stream_cut", model=CLAUDE, after=3))
        router = pair(StreamGuard(provider_for(sim, CLAUDE), buffer_first_tokens=5), provider_for(sim, GPT))
        chunks = await collect(router.stream(REQUEST))
        plain = await provider_for(sim, GPT).generate(REQUEST)
        await router.close()
    assert {c.provider for c in chunks} == {"fallback"}
    assert "".join(c.text for c in chunks) == plain.text  # nothing of the cut primary's 3 tokens


async def test_buffer_first_tokens_releases_the_held_tokens_in_order_then_streams() -> None:
    async with running_sim(token_ms=TOKEN_MS) as sim:  # 16 separate deltas: 5 held, then 11 streamed
        guarded = StreamGuard(provider_for(sim, CLAUDE), buffer_first_tokens=5)
        chunks = await collect(guarded.stream(REQUEST))
        plain = await provider_for(sim, CLAUDE).generate(REQUEST)
        await guarded.close()
    assert len([c for c in chunks if c.text]) == 16
    assert "".join(c.text for c in chunks) == plain.text
    assert chunks[-1].usage == plain.usage


async def test_a_buffer_longer_than_the_reply_releases_the_whole_reply_at_its_end() -> None:
    async with running_sim(token_ms=TOKEN_MS) as sim:  # 16 separate deltas, all held
        guarded = StreamGuard(provider_for(sim, GPT), buffer_first_tokens=1000)
        chunks = await collect(guarded.stream(REQUEST))
        await guarded.close()
        async with provider_for(sim, GPT) as plain_provider:
            plain = await plain_provider.generate(REQUEST)
    assert len([c for c in chunks if c.text]) == 16
    assert "".join(c.text for c in chunks) == plain.text
    assert chunks[-1].finish_reason == "stop"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
async def test_closing_a_stream_early_closes_the_upstream_request(model: str) -> None:
    async with running_sim(token_ms=20) as sim:
        router = single(provider_for(sim, model))
        stream = router.stream(REQUEST)
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        for _ in range(100):  # the simulator notices the hang-up on its next write
            if sim.stats.snapshot()["streams"]["client_closed"]:
                break
            await asyncio.sleep(0.01)
        streams = await streams_when_settled(sim)
        metrics = router.get_metrics()
        await router.close()
    assert streams["client_closed"] == 1
    assert streams["open"] == 0
    assert streams["completed"] == 0
    assert metrics["global"]["failed_requests"] == 0  # the caller left: not the provider's failure
    assert metrics["global"]["cancelled_requests"] == 1
