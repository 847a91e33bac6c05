"""Mid-stream continuation in the library (stream_call.py, continuation.py) against the simulator.

Providers do not retry on their own here (``max_retries=0``), so simulator request counts are the
router's decisions. Timeouts are small (0.2-0.5 s); no assertion is an exact timing.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from continuation_support import MODEL, WORDS

from greenlang_llm import LLMRouter
from greenlang_llm._errors import StreamInterruptedError
from greenlang_llm._types import GenerationRequest, StreamChunk
from greenlang_llm.continuation import SplitUsage
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

KEY = "sk-test-canary"
REQ = GenerationRequest(prompt="Tell me a long story about rivers", max_tokens=200)


def claude(sim: Simulator, model: str = MODEL, **kw: object) -> AnthropicProvider:
    return AnthropicProvider(model, api_key=KEY, max_retries=0, base_url=sim.base_url, **kw)  # type: ignore[arg-type]


def gpt(sim: Simulator, model: str = MODEL, **kw: object) -> OpenAIProvider:
    return OpenAIProvider(model, api_key=KEY, max_retries=0, base_url=sim.openai_base_url, **kw)  # type: ignore[arg-type]


async def full_answer(sim: Simulator, request: GenerationRequest = REQ) -> str:
    async with gpt(sim) as provider:
        return (await provider.generate(request)).text


async def collect(router: LLMRouter, request: GenerationRequest = REQ) -> list[StreamChunk]:
    return [c async for c in router.stream(request)]


async def test_a_stream_cut_after_40_of_60_words_finishes_with_exactly_the_full_answer(
    sim: Simulator,
) -> None:
    expected = await full_answer(sim)
    assert len(expected.split()) == WORDS
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router)
    text = "".join(c.text for c in chunks)
    assert text == expected
    # claude delivered exactly the first 40 words, then gpt everything after (in however many chunks)
    assert [provider for provider, _ in itertools.groupby(c.provider for c in chunks)] == ["claude", "gpt"]
    assert "".join(c.text for c in chunks if c.provider == "claude") == " ".join(expected.split()[:40])
    final = chunks[-1]
    assert final.finish_reason == "stop"
    assert final.provider == "gpt"
    assert final.model_id == MODEL
    usage = final.usage
    assert isinstance(usage, SplitUsage)
    assert [p.provider for p in usage.parts] == ["claude", "gpt"]
    assert usage.parts[1].usage.output_tokens == 20  # reported by the fallback
    assert usage.parts[0].usage.output_tokens >= 40  # the cut call: counted locally (tiktoken)
    assert usage.output_tokens == sum(p.usage.output_tokens for p in usage.parts)
    assert usage.total_cost_usd == pytest.approx(sum(p.usage.total_cost_usd for p in usage.parts))
    assert usage.total_cost_usd > usage.parts[1].usage.total_cost_usd > 0
    assert usage.input_tokens == sum(p.usage.input_tokens for p in usage.parts)
    assert usage.parts[0].usage.estimated
    assert not usage.parts[1].usage.estimated
    assert usage.estimated
    metrics = router.get_metrics()
    assert metrics["global"]["successful_requests"] == 1
    assert metrics["global"]["failed_requests"] == 0
    assert metrics["global"]["failover_count"] == 1
    assert metrics["providers"]["claude"]["failed_requests"] == 1
    assert metrics["providers"]["gpt"]["successful_requests"] == 1


async def test_the_continuation_request_carries_the_delivered_text_as_an_assistant_prefill(
    sim: Simulator,
) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    seen: list[GenerationRequest] = []
    fallback = gpt(sim)
    original = fallback.stream

    def spy(request: GenerationRequest):  # type: ignore[no-untyped-def]
        seen.append(request)
        return original(request)

    fallback.stream = spy  # type: ignore[method-assign]
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", fallback, priority=2)
        await collect(router)
    (continuation,) = seen
    last = continuation.to_messages()[-1]
    assert last["role"] == "assistant"
    assert last["content"] == " ".join(expected.split()[:40])
    assert 1 <= continuation.max_tokens <= REQ.max_tokens - 40  # less what the cut call used


async def test_a_repeated_opening_of_the_continuation_is_not_shown_twice(sim: Simulator) -> None:
    expected = await full_answer(sim)
    await sim_models(sim, {MODEL: {"echo_words": 3}})
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router)
    assert "".join(c.text for c in chunks) == expected
    usage = chunks[-1].usage
    assert isinstance(usage, SplitUsage)
    assert usage.parts[-1].usage.output_tokens == 3 + 20  # the echo is billed, never shown


async def sim_models(sim: Simulator, models: dict[str, dict[str, object]]) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.base_url}/_sim/models", json=models) as response,
    ):
        assert response.status == 200, await response.text()


async def test_a_stall_after_20_words_finishes_within_idle_timeout_plus_the_fallback(sim: Simulator) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("stall", path="/v1/messages", after=20, delay=30))
    idle = 0.3
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim, idle_timeout=idle), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        started = time.monotonic()
        chunks = await collect(router)
        took = time.monotonic() - started
    assert "".join(c.text for c in chunks) == expected
    assert took < idle + 5.0  # bounded by the idle timeout plus the fallback, never the 30 s stall


async def test_a_slow_first_token_fails_over_within_first_token_timeout(sim: Simulator) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("slow", path="/v1/messages", delay=20))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim, first_token_timeout=0.3), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        started = time.monotonic()
        chunks = await collect(router)
        took = time.monotonic() - started
    assert "".join(c.text for c in chunks) == expected
    assert {c.provider for c in chunks} == {"gpt"}
    assert took < 5.0
    assert sim.stats.by_path["/v1/messages"] == 1  # a timeout is never retried on the same provider


@pytest.mark.parametrize("kind", ["invalid_json", "stream_error"])
async def test_a_broken_event_after_text_is_continued(sim: Simulator, kind: str) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule(kind, path="/v1/messages", after=25))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router)
    assert "".join(c.text for c in chunks) == expected


async def test_a_prefill_rejecting_fallback_is_learned_restarted_and_never_surfaces(sim: Simulator) -> None:
    # issue 19: a provider that refuses the prefill is no longer skipped but asked again without it;
    # "refuser" serves another model, so its fresh answer does not begin with the delivered text:
    # it is closed, booked, and "gpt" finishes with the prefill
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    sim.faults.add(FaultRule("prefill", path="/v1/chat/completions", model="refuser"))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("refuser", gpt(sim, model="refuser"), priority=2)
        router.register_provider("gpt", gpt(sim), priority=3)
        chunks = await collect(router)
        assert "".join(c.text for c in chunks) == expected
        refuser = router.get_metrics()["providers"]["refuser"]
        assert refuser["errors_by_type"] == {"PrefillRejected": 1, "RestartDiverged": 1}
        assert refuser["circuit_breaker_state"] == "closed"
        usage = chunks[-1].usage
        assert isinstance(usage, SplitUsage)
        assert [p.provider for p in usage.parts] == ["claude", "refuser", "gpt"]  # the restart was paid for
        assert sim.stats.by_model["refuser"] == 2  # the refused prefill, then the restart
        # learned: the next continuation sends it no prefill at all, only the restart
        chunks = await collect(router)
        assert "".join(c.text for c in chunks) == expected
        assert sim.stats.by_model["refuser"] == 3
        assert sim.stats.faults["prefill"] == 1


async def test_a_prefill_rejecting_fallback_whose_fresh_answer_begins_with_the_delivered_text_finishes_it(
    sim: Simulator,
) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=10))
    sim.faults.add(FaultRule("prefill", path="/v1/chat/completions"))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router)
        metrics = router.get_metrics()
    text = "".join(c.text for c in chunks)
    assert text == expected  # exactly the full answer: no repeated words, nothing missing
    assert "".join(c.text for c in chunks if c.provider == "claude") == " ".join(expected.split()[:10])
    assert sim.stats.faults["prefill"] == 1
    usage = chunks[-1].usage
    assert isinstance(usage, SplitUsage)
    assert [p.provider for p in usage.parts] == ["claude", "gpt"]
    assert usage.parts[1].usage.output_tokens == WORDS  # the whole restarted answer was paid for
    assert not usage.parts[1].usage.estimated
    assert metrics["global"]["successful_requests"] == 1
    assert metrics["providers"]["gpt"]["errors_by_type"] == {"PrefillRejected": 1}
    assert metrics["providers"]["gpt"]["circuit_breaker_state"] == "closed"


async def test_when_the_fresh_answer_does_not_begin_with_the_delivered_text_the_cut_is_seen_not_the_400(
    sim: Simulator,
) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=10))
    sim.faults.add(FaultRule("prefill", path="/v1/chat/completions"))
    received: list[str] = []
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("other", gpt(sim, model="other"), priority=2)  # another model: another text

        async def consume() -> None:
            async for chunk in router.stream(REQ):
                received.append(chunk.text)

        with pytest.raises(StreamInterruptedError) as info:
            await consume()
        metrics = router.get_metrics()
    assert info.value.partial_text == "".join(received)
    assert len(info.value.partial_text.split()) == 10  # nothing of the other answer reached the caller
    assert info.value.status_code != 400
    assert "prefill" not in str(info.value).lower()
    assert info.value.provider == "claude"
    assert [p.provider for p in info.value.usage_parts] == ["claude", "other"]  # type: ignore[attr-defined]
    assert sim.stats.by_model["other"] == 2  # the refused prefill, then the restart
    assert metrics["global"]["failed_requests"] == 1
    assert metrics["providers"]["other"]["errors_by_type"] == {"PrefillRejected": 1, "RestartDiverged": 1}


@pytest.mark.parametrize("declared", ["keyword", "table"])
async def test_a_provider_known_to_refuse_a_prefill_is_never_sent_one(sim: Simulator, declared: str) -> None:
    from greenlang_llm import pricing

    # "table": claude-sonnet-4-6 is in prefill_support's table (refuses); "keyword": sim-60 is not
    model = "claude-sonnet-4-6" if declared == "table" else MODEL
    pricing.set_price_override(model, input_per_mtok=3, output_per_mtok=15)
    request = GenerationRequest(prompt="Tell me a long story about rivers", max_tokens=200)
    async with gpt(sim, model) as reference:
        expected = (await reference.generate(request)).text
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=25))
    sim.faults.add(FaultRule("prefill", path="/v1/chat/completions"))
    fallback = gpt(sim, model, supports_prefill=False) if declared == "keyword" else gpt(sim, model)
    assert fallback.supports_prefill is False
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim, model), priority=1)
        router.register_provider("gpt", fallback, priority=2)
        chunks = await collect(router, request)
        metrics = router.get_metrics()
    assert "".join(c.text for c in chunks) == expected
    assert sim.stats.faults.get("prefill", 0) == 0  # the prefill was never sent
    assert metrics["providers"]["gpt"]["errors_by_type"] == {}


async def test_continuation_off_ends_the_stream_with_the_interruption(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    async with LLMRouter(continue_on_failure=False) as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        with pytest.raises(StreamInterruptedError):
            await collect(router)
    assert sim.stats.by_path.get("/v1/chat/completions", 0) == 0


async def test_a_continuation_that_is_cut_too_is_continued_again(sim: Simulator) -> None:
    expected = await full_answer(sim)
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=15))
    sim.faults.add(FaultRule("stream_cut", model="second", after=10))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("second", gpt(sim, model="second"), priority=2)
        router.register_provider("gpt", gpt(sim), priority=3)
        chunks = await collect(router)
    # "second" serves another model, so its continuation is its own reply, not ours: the point here
    # is the bookkeeping. Three parts, each attributed, and the text the caller saw is one stream.
    usage = chunks[-1].usage
    assert isinstance(usage, SplitUsage)
    assert [p.provider for p in usage.parts] == ["claude", "second", "gpt"]
    assert "".join(c.text for c in chunks).startswith(" ".join(expected.split()[:15]))


async def test_many_concurrent_streams_under_random_mid_stream_faults_all_finish_exactly(
    sim: Simulator,
) -> None:
    n = 40
    requests = [GenerationRequest(prompt=f"Story number {i} about rivers", max_tokens=200) for i in range(n)]
    expected = [await full_answer(sim, r) for r in requests]
    for kind, after, rate in (
        ("stream_cut", 7, 0.2),
        ("invalid_json", 31, 0.2),
        ("stream_error", 52, 0.2),
        ("stall", 12, 0.2),
    ):
        sim.faults.add(FaultRule(kind, path="/v1/messages", after=after, rate=rate, delay=30))
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim, idle_timeout=0.3), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        results = await asyncio.gather(*(collect(router, r) for r in requests))
        metrics = router.get_metrics()
    assert ["".join(c.text for c in chunks) for chunks in results] == expected
    continued = sum(isinstance(chunks[-1].usage, SplitUsage) for chunks in results)
    assert continued == sum(sim.stats.faults.values()) > 0
    assert metrics["global"]["successful_requests"] == n
    assert metrics["global"]["failed_requests"] == 0
    assert metrics["global"]["failover_count"] == continued


async def test_the_request_deadline_caps_the_continuation_too(sim: Simulator) -> None:
    request = GenerationRequest(prompt="Tell me", timeout=0.5)
    expected = await full_answer(sim, request)
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    sim.faults.add(FaultRule("slow", path="/v1/chat/completions", delay=20))
    received: list[str] = []
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)

        async def consume() -> None:
            async for chunk in router.stream(request):
                received.append(chunk.text)

        started = time.monotonic()
        with pytest.raises(StreamInterruptedError) as info:
            await consume()
        took = time.monotonic() - started
    assert info.value.partial_text == "".join(received)
    assert info.value.partial_text == " ".join(expected.split()[:40])  # claude's 40 words, nothing more
    assert took < 5.0  # the 20 s fallback is cut by the 0.5 s deadline
