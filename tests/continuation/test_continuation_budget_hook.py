"""``LLMRouter.stream(..., before_continuation=hook)``: consulted before each continuation, and only then.

Against the simulator (providers do not retry on their own, so simulator request counts are the
router's calls). A refusal must end the stream interrupted, with no upstream call for it.
"""

from __future__ import annotations

import pytest
from continuation_support import MODEL, WORDS

from greenlang_llm import LLMRouter
from greenlang_llm._errors import BudgetExceededError, StreamInterruptedError
from greenlang_llm._types import GenerationRequest, StreamChunk
from greenlang_llm.continuation import SplitUsage
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.base_provider import BaseLLMProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

KEY = "sk-test-canary"
REQ = GenerationRequest(prompt="Tell me a long story about rivers", max_tokens=200)


def claude(sim: Simulator) -> AnthropicProvider:
    return AnthropicProvider(MODEL, api_key=KEY, max_retries=0, base_url=sim.base_url)


def gpt(sim: Simulator, model: str = MODEL) -> OpenAIProvider:
    return OpenAIProvider(model, api_key=KEY, max_retries=0, base_url=sim.openai_base_url)


class Recorder:
    """A hook that records its calls; ``refuse`` makes it raise like a hard budget would."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[BaseLLMProvider, GenerationRequest]] = []
        self.refuse = refuse

    async def __call__(self, provider: BaseLLMProvider, request: GenerationRequest) -> None:
        self.calls.append((provider, request))
        if self.refuse:
            raise BudgetExceededError("no room for it", tenant_id="acme", limit_usd=1.0)


async def collect(router: LLMRouter, hook: object) -> list[StreamChunk]:
    return [c async for c in router.stream(REQ, before_continuation=hook)]  # type: ignore[arg-type]


async def test_the_hook_is_called_once_per_continuation_with_the_continuation_request(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    hook = Recorder()
    fallback = gpt(sim)
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", fallback, priority=2)
        chunks = await collect(router, hook)
    text = "".join(c.text for c in chunks)
    assert len(text.split()) == WORDS
    ((provider, request),) = hook.calls
    assert provider is fallback
    last = request.to_messages()[-1]
    assert last["role"] == "assistant"
    assert last["content"] == " ".join(text.split()[:40])
    assert request.max_tokens <= REQ.max_tokens - 40


async def test_a_plain_stream_never_consults_the_hook(sim: Simulator) -> None:
    hook = Recorder(refuse=True)
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router, hook)
    assert chunks[-1].finish_reason == "stop"
    assert hook.calls == []


async def test_a_failover_before_the_first_token_is_not_a_continuation(sim: Simulator) -> None:
    sim.faults.add(FaultRule("http_503", path="/v1/messages"))
    hook = Recorder(refuse=True)
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        chunks = await collect(router, hook)
    assert {c.provider for c in chunks} == {"gpt"}
    assert hook.calls == []


async def test_a_refusal_ends_the_stream_interrupted_without_calling_the_fallback(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    hook = Recorder(refuse=True)
    seen: list[str] = []
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)

        async def consume() -> None:
            async for chunk in router.stream(REQ, before_continuation=hook):
                seen.append(chunk.text)

        with pytest.raises(StreamInterruptedError) as info:
            await consume()
        metrics = router.get_metrics()
    error = info.value
    assert len(hook.calls) == 1
    assert sim.stats.by_path.get("/v1/chat/completions", 0) == 0  # the refused call was never made
    assert error.partial_text == "".join(seen)
    assert len(error.partial_text.split()) == 40
    assert "budget refused the continuation" in error.message
    assert isinstance(error.__cause__, BudgetExceededError)
    assert [p.provider for p in error.usage_parts] == ["claude"]  # type: ignore[attr-defined]
    gpt_metrics = metrics["providers"]["gpt"]
    assert gpt_metrics["total_requests"] == 0
    assert gpt_metrics["failed_requests"] == 0
    assert metrics["global"]["failed_requests"] == 1


async def test_a_failing_hook_also_ends_the_stream_interrupted(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))

    def broken(provider: BaseLLMProvider, request: GenerationRequest) -> None:
        raise RuntimeError("hook bug")

    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("gpt", gpt(sim), priority=2)
        with pytest.raises(StreamInterruptedError) as info:
            await collect(router, broken)
    assert "hook failed: RuntimeError: hook bug" in info.value.message
    assert sim.stats.by_path.get("/v1/chat/completions", 0) == 0


async def test_a_continued_continuation_consults_the_hook_again(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=15))
    sim.faults.add(FaultRule("stream_cut", model="second", after=10))
    hook = Recorder()
    async with LLMRouter() as router:
        router.register_provider("claude", claude(sim), priority=1)
        router.register_provider("second", gpt(sim, "second"), priority=2)
        router.register_provider("gpt", gpt(sim), priority=3)
        chunks = await collect(router, hook)
    usage = chunks[-1].usage
    assert isinstance(usage, SplitUsage)
    assert [p.provider for p in usage.parts] == ["claude", "second", "gpt"]
    assert [p.model_id for p, _ in hook.calls] == ["second", MODEL]
    first, second = (r.to_messages()[-1]["content"] for _, r in hook.calls)
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert len(second) > len(first)
    assert second.startswith(first)
