"""Both HTTP providers beyond text, against the simulator: tool calls, thinking and dropped hints,
plain and streamed, with the same answer and the same bill either way."""

from __future__ import annotations

from typing import Any

import pytest

from greenlang_llm import GenerationRequest, LLMRouter, UnsupportedParamsError
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.simulator.testing import Simulator, simulator  # noqa: F401

TOOLS: list[Any] = [{"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
ASK = [{"role": "user", "content": "use lookup please"}]


def _providers(sim: Simulator) -> list[AnthropicProvider | OpenAIProvider]:
    return [
        AnthropicProvider("claude-sonnet-4-6", api_key="sk-test", base_url=sim.anthropic_base_url),
        OpenAIProvider("gpt-4.1-mini", api_key="sk-test", base_url=sim.openai_base_url),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["anthropic", "openai"])
async def test_a_tool_call_streamed_equals_the_plain_one_and_costs_the_same(
    simulator: Simulator, which: int,  # noqa: F811
) -> None:
    provider = _providers(simulator)[which]
    request = GenerationRequest(messages=ASK, tools=TOOLS, max_tokens=100)
    plain = await provider.generate(request)
    chunks = [c async for c in provider.stream(request)]
    await provider.close()
    (call,) = plain.tool_calls
    assert call["name"] == "lookup"
    assert plain.finish_reason == chunks[-1].finish_reason == "tool_calls"
    opened = [d for c in chunks for d in c.deltas if d.kind == "tool_call"]
    assert [(d.id, d.name) for d in opened] == [(call["id"], "lookup")]
    arguments = "".join(d.text for c in chunks for d in c.deltas if d.kind == "tool_arguments")
    assert arguments.replace(" ", "") == call["arguments"].replace(" ", "")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_cost_usd == plain.usage.total_cost_usd > 0


async def test_thinking_tokens_are_billed_as_reported_plain_and_streamed(
    simulator: Simulator,  # noqa: F811
) -> None:
    provider = _providers(simulator)[0]
    request = GenerationRequest(prompt="think first", max_tokens=2000, reasoning={"budget_tokens": 1024})
    plain = await provider.generate(request)
    chunks = [c async for c in provider.stream(request)]
    await provider.close()
    (thinking,) = plain.thinking
    assert thinking["signature"]
    assert plain.usage.reasoning_tokens == 8  # the simulator's K thinking words
    last = chunks[-1].usage
    assert last is not None
    assert last.reasoning_tokens == plain.usage.reasoning_tokens
    assert last.output_tokens == plain.usage.output_tokens


async def test_a_dropped_hint_is_named_on_the_reply_and_on_the_streams_last_chunk(
    simulator: Simulator,  # noqa: F811
) -> None:
    provider = _providers(simulator)[0]
    request = GenerationRequest(prompt="hi", seed=7, max_tokens=5)
    plain = await provider.generate(request)
    chunks = [c async for c in provider.stream(request)]
    await provider.close()
    assert plain.dropped_params == ("seed",)
    assert chunks[-1].dropped_params == ("seed",)
    assert "seed" not in simulator.app.request_log.entries()[-1]["body"]


async def test_n_answers_are_served_plain_and_refused_streamed(simulator: Simulator) -> None:  # noqa: F811
    router = LLMRouter()
    router.register_provider("gpt", _providers(simulator)[1])
    request = GenerationRequest(prompt="hi", n=2, max_tokens=5)
    plain = await router.generate(request)
    assert plain.raw is not None
    assert len(plain.raw["choices"]) == 2
    with pytest.raises(UnsupportedParamsError, match="n > 1"):
        async for _ in router.stream(request):
            pass
    await router.close()
