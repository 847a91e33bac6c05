"""The official SDKs against the simulator beyond text, plain and streamed: tool calls,
parallel tool calls, a two-turn tool conversation, structured output, thinking, OpenAI ``n``
and ``logprobs`` (the rules in ``simulator/replies.py``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import anthropic
import openai
import orjson
import pytest

from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.replies import VOCAB, count_text_tokens

KEY = "sk-test-canary"
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 3}},
    "required": ["city", "days"],
}
TIME_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
A_TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Time in a zone", "input_schema": TIME_SCHEMA},
]
O_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": t["name"], "description": t["description"],
                                      "parameters": t["input_schema"]}}
    for t in A_TOOLS
]
ASK = "What is the weather like?"
BOTH = "Use get_weather and get_time."


def digest(text: str, model: str, *extra: int) -> bytes:
    parts = [model, None, [{"role": "user", "content": text}], *extra]
    key = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(key, digest_size=32).digest()


def words(d: bytes, n: int) -> list[str]:
    return [VOCAB[(d[i % 32] + 7 * (i // 32)) % 64] for i in range(n)]


def weather(d: bytes) -> dict[str, Any]:
    return {"city": VOCAB[d[0] % 64], "days": min(d[1] % 10 + 1, 3)}


def a_client(sim: Simulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=KEY, base_url=sim.base_url, max_retries=0)


def o_client(sim: Simulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=0)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- Anthropic


async def test_anthropic_tool_call_plain_and_streamed(simulator: Simulator) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    message = await client.messages.create(model=model, max_tokens=200, tools=A_TOOLS, messages=user(ASK))
    d = digest(ASK, model)
    assert message.stop_reason == "tool_use"
    [call] = message.content
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == (f"toolu_sim{d.hex()[:16]}0", "get_weather", weather(d))
    arguments = orjson.dumps(weather(d)).decode()
    assert message.usage.output_tokens == count_text_tokens(arguments) + 1
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 200, "tools": A_TOOLS, "messages": user(ASK)}
    async with client.messages.stream(**kwargs) as stream:
        final = await stream.get_final_message()
    assert final.content == message.content
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.input_tokens == message.usage.input_tokens
    assert final.stop_reason == "tool_use"
    logged = simulator.app.request_log.entries()[-1]
    assert logged["path"] == "/v1/messages"
    assert logged["body"]["tools"] == A_TOOLS
    assert logged["body"]["stream"] is True


async def test_anthropic_parallel_tool_calls_and_disable_parallel(simulator: Simulator) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    message = await client.messages.create(model=model, max_tokens=200, tools=A_TOOLS, messages=user(BOTH))
    d = digest(BOTH, model)
    assert [(b.type, b.id, b.name) for b in message.content] == [  # type: ignore[union-attr]
        ("tool_use", f"toolu_sim{d.hex()[:16]}0", "get_weather"),
        ("tool_use", f"toolu_sim{d.hex()[:16]}1", "get_time")]
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 200, "tools": A_TOOLS, "messages": user(BOTH)}
    async with client.messages.stream(**kwargs) as stream:
        assert (await stream.get_final_message()).content == message.content
    single = await client.messages.create(
        model=model, max_tokens=200, tools=A_TOOLS, messages=user(BOTH),
        tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [b.name for b in single.content] == ["get_weather"]  # type: ignore[union-attr]
    named = await client.messages.create(
        model=model, max_tokens=200, tools=A_TOOLS, messages=user(BOTH),
        tool_choice={"type": "tool", "name": "get_time"})
    assert [b.name for b in named.content] == ["get_time"]  # type: ignore[union-attr]


async def test_anthropic_two_turn_tool_conversation(simulator: Simulator) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    first = await client.messages.create(model=model, max_tokens=200, tools=A_TOOLS, messages=user(ASK))
    call = first.content[0]
    assert call.type == "tool_use"
    messages: list[Any] = [
        *user(ASK),
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C"}]},
    ]
    second = await client.messages.create(model=model, max_tokens=5, tools=A_TOOLS, messages=messages)
    assert second.stop_reason == "max_tokens"
    text = second.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"Tool {call.id} said: Sunny, 21C. ")
    assert len(text.split()) == 5 + 5  # the echo's five words, then max_tokens words
    async with client.messages.stream(model=model, max_tokens=5, tools=A_TOOLS, messages=messages) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert streamed == text
    assert final.usage.output_tokens == second.usage.output_tokens
    wrong = [*messages[:2], {"role": "user", "content": [
        *messages[2]["content"], {"type": "tool_result", "tool_use_id": "toolu_other", "content": "x"}]}]
    with pytest.raises(anthropic.BadRequestError, match="found in `tool_result` blocks: toolu_other"):
        await client.messages.create(model=model, max_tokens=5, tools=A_TOOLS, messages=wrong)


async def test_anthropic_thinking_plain_and_streamed(simulator: Simulator) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    kwargs: dict[str, Any] = {
        "model": model, "max_tokens": 2000, "messages": user(ASK),
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    message = await client.messages.create(**kwargs)
    d = digest(ASK, model)
    thinking = " ".join(VOCAB[(d[j] + 32) % 64] for j in range(8))
    signature = base64.b64encode(hashlib.blake2b(thinking.encode(), digest_size=32).digest()).decode()
    block, text = message.content
    assert block.type == "thinking"
    assert (block.thinking, block.signature) == (thinking, signature)
    assert text.type == "text"
    assert text.text == " ".join(words(d, 16))
    assert message.usage.output_tokens == 24
    async with client.messages.stream(**kwargs) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_message()
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in message.content]
    pieces = [e.delta.thinking for e in events
              if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]
    assert pieces == [w if i == 0 else " " + w for i, w in enumerate(thinking.split())]
    assert final.usage.output_tokens == 24


async def test_anthropic_structured_output(simulator: Simulator) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    message = await client.messages.create(
        model=model, max_tokens=200, messages=user(ASK),
        output_config={"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}})
    assert orjson.loads(message.content[0].text) == weather(digest(ASK, model))  # type: ignore[union-attr]


# ---------------------------------------------------------------- OpenAI


async def test_openai_tool_call_plain_and_streamed(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    completion = await client.chat.completions.create(model=model, tools=O_TOOLS, messages=user(ASK))
    d = digest(ASK, model)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert (call.id, call.function.name) == (f"call_sim{d.hex()[:16]}0", "get_weather")
    assert orjson.loads(call.function.arguments) == weather(d)
    async with client.chat.completions.stream(
        model=model, tools=O_TOOLS, messages=user(ASK), stream_options={"include_usage": True}
    ) as stream:
        final = await stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed] == [
        (call.id, call.function.name, call.function.arguments)]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert completion.usage is not None
    assert final.usage.completion_tokens == completion.usage.completion_tokens


async def test_openai_parallel_tool_calls(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    completion = await client.chat.completions.create(model=model, tools=O_TOOLS, messages=user(BOTH))
    d = digest(BOTH, model)
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [  # type: ignore[union-attr]
        (f"call_sim{d.hex()[:16]}0", "get_weather"), (f"call_sim{d.hex()[:16]}1", "get_time")]
    async with client.chat.completions.stream(model=model, tools=O_TOOLS, messages=user(BOTH)) as stream:
        final = await stream.get_final_completion()
    assert [(c.id, c.function.arguments) for c in final.choices[0].message.tool_calls or []] == [
        (c.id, c.function.arguments) for c in calls]  # type: ignore[union-attr]
    single = await client.chat.completions.create(
        model=model, tools=O_TOOLS, messages=user(BOTH), parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls or []) == 1


async def test_openai_two_turn_tool_conversation(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    first = await client.chat.completions.create(model=model, tools=O_TOOLS, messages=user(BOTH))
    message = first.choices[0].message
    calls = message.tool_calls or []
    messages: list[Any] = [
        *user(BOTH),
        message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)),
    ]
    second = await client.chat.completions.create(
        model=model, tools=O_TOOLS, messages=messages, max_completion_tokens=3)
    text = second.choices[0].message.content or ""
    assert text.startswith(f"Tool {calls[0].id} said: result 0. Tool {calls[1].id} said: result 1. ")
    assert len(text.split()) == 10 + 3
    assert second.choices[0].finish_reason == "length"
    stream = await client.chat.completions.create(
        model=model, tools=O_TOOLS, messages=messages, max_completion_tokens=3, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == text
    unanswered = messages[:3]  # the second call has no tool message
    with pytest.raises(openai.BadRequestError, match=f"did not have response messages: {calls[1].id}"):
        await client.chat.completions.create(model=model, tools=O_TOOLS, messages=[*unanswered, *user("go")])


async def test_openai_structured_output(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    fmt: Any = {"type": "json_schema",
                "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True}}
    completion = await client.chat.completions.create(model=model, messages=user(ASK), response_format=fmt)
    assert orjson.loads(completion.choices[0].message.content or "") == weather(digest(ASK, model))
    stream = await client.chat.completions.create(
        model=model, messages=user(ASK), response_format=fmt, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == completion.choices[0].message.content
    json_object = await client.chat.completions.create(
        model=model, messages=user(ASK), response_format={"type": "json_object"})
    answer = orjson.loads(json_object.choices[0].message.content or "")
    assert answer == {"answer": words(digest(ASK, model), 1)[0]}


async def test_openai_reasoning_tokens(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    completion = await client.chat.completions.create(
        model=model, messages=user(ASK), reasoning_effort="high")
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 16 + 8
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 8
    assert (completion.choices[0].message.content or "").split() == words(digest(ASK, model), 16)
    stream = await client.chat.completions.create(
        model=model, messages=user(ASK), reasoning_effort="high", stream=True,
        stream_options={"include_usage": True})
    usage = [c.usage async for c in stream if c.usage is not None]
    assert usage[0].completion_tokens_details is not None
    assert usage[0].completion_tokens_details.reasoning_tokens == 8


async def test_openai_n_and_logprobs_plain_and_streamed(simulator: Simulator) -> None:
    client, model = o_client(simulator), "gpt-4.1-mini"
    completion = await client.chat.completions.create(
        model=model, messages=user(ASK), n=2, logprobs=True, max_completion_tokens=4)
    texts = [" ".join(words(digest(ASK, model), 4)), " ".join(words(digest(ASK, model, 1), 4))]
    assert [c.index for c in completion.choices] == [0, 1]
    assert [c.message.content for c in completion.choices] == texts
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 8
    logprobs = completion.choices[1].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [(e.token, e.logprob) for e in logprobs.content] == [
        (w if k == 0 else " " + w, -0.0625 * k) for k, w in enumerate(texts[1].split())]
    stream = await client.chat.completions.create(
        model=model, messages=user(ASK), n=2, logprobs=True, max_completion_tokens=4, stream=True)
    got: dict[int, list[str]] = {0: [], 1: []}
    tokens: dict[int, list[str]] = {0: [], 1: []}
    finishes: dict[int, str | None] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            got[choice.index].append(choice.delta.content or "")
            if choice.logprobs is not None and choice.logprobs.content:
                tokens[choice.index].extend(e.token for e in choice.logprobs.content)
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert ["".join(got[0]), "".join(got[1])] == texts
    assert ["".join(tokens[0]), "".join(tokens[1])] == texts
    assert finishes == {0: "length", 1: "length"}


async def test_sync_clients_get_tool_calls_too(simulator: Simulator) -> None:
    def run() -> tuple[str, str]:
        a = anthropic.Anthropic(api_key=KEY, base_url=simulator.base_url, max_retries=0)
        o = openai.OpenAI(api_key=KEY, base_url=simulator.openai_base_url, max_retries=0)
        message = a.messages.create(model="m", max_tokens=100, tools=A_TOOLS, messages=user(ASK))
        completion = o.chat.completions.create(model="m", tools=O_TOOLS, messages=user(ASK))
        return message.content[0].id, (completion.choices[0].message.tool_calls or [])[0].id  # type: ignore[union-attr]

    a_id, o_id = await asyncio.to_thread(run)
    head = digest(ASK, "m").hex()[:16]
    assert (a_id, o_id) == (f"toolu_sim{head}0", f"call_sim{head}0")


async def test_images_and_tools_count_toward_input_tokens_and_count_tokens_agrees(
    simulator: Simulator,
) -> None:
    client, model = a_client(simulator), "claude-sonnet-4-6"
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}
    with_image: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]
    text_only: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "look"}]}]
    counted = await client.messages.count_tokens(model=model, messages=with_image, tools=A_TOOLS)
    message = await client.messages.create(
        model=model, max_tokens=10, messages=with_image, tools=A_TOOLS, tool_choice={"type": "none"})
    assert counted.input_tokens == message.usage.input_tokens
    plain = await client.messages.create(model=model, max_tokens=10, messages=text_only)
    assert plain.usage.input_tokens == 3 + 4 + 1
    no_tools = await client.messages.create(model=model, max_tokens=10, messages=with_image)
    assert no_tools.usage.input_tokens == plain.usage.input_tokens + 85
    assert message.usage.input_tokens > no_tools.usage.input_tokens + 2 * 10
    url = {"url": "data:image/png;base64,aGk="}
    parts = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": url}]
    o_messages: list[Any] = [{"role": "user", "content": parts}]
    completion = await o_client(simulator).chat.completions.create(model=model, messages=o_messages)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 3 + 4 + 1 + 85
