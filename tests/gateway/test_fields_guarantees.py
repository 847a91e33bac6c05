"""The gateway's guarantees, re-tested with tools, images and thinking in the mix (issue #20):

- streamed cost == plain cost (same request: same usage, same ledger cost, the plain reply's
  ``x-greenlang-cost-usd``), same API and across APIs;
- an honest mid-stream error: a stream cut inside a tool call or a thinking block ends with the
  API's error event, never a clean finish, and is not continued with a prefill (the upstream log
  shows no second request); text after a thinking block is still continued;
- failover before the first byte sends the full request, translated, to the next provider;
- one ledger record per upstream call that produced tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fields_support import CLAUDE, GPT, MODES, Got, ThreadStack, call_anthropic, call_openai, mode_id

from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
OPENAI_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}},
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]
ANTHROPIC_TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
]
STORY = "story-model"
"""One model name served over both APIs (providers claude_story / gpt_story): a continuation on the
other API yields exactly the rest of the reply."""


def _configure(data: dict[str, Any], sim: Simulator) -> None:
    data["server"]["circuit_breaker_threshold"] = 1000  # faults here must not open breakers
    data["providers"] += [
        {
            "name": "claude_story",
            "type": "anthropic",
            "model_id": STORY,
            "base_url": sim.anthropic_base_url,
            "api_key_env": "SIM_KEY",
            "max_retries": 0,
            "priority": 5,
        },
        {
            "name": "gpt_story",
            "type": "openai",
            "model_id": STORY,
            "base_url": sim.openai_base_url,
            "api_key_env": "SIM_KEY",
            "max_retries": 0,
            "priority": 6,
        },
    ]
    data["routes"].append(
        {"name": "story", "strategy": "priority", "providers": ["claude_story", "gpt_story"]}
    )
    data["budgets"] = [{"tenant": "acme", "monthly_limit_usd": 1000.0, "hard_limit": True}]


@pytest.fixture(scope="module")
def st() -> Iterator[ThreadStack]:
    with ThreadStack(configure=_configure) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(st: ThreadStack) -> None:
    st.reset()


def image_message(text: str, api: str) -> dict[str, Any]:
    if api == "openai":
        return {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        }
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": text},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    }


async def call(st: ThreadStack, api: str, kind: str, stream: bool, **kw: Any) -> Got:
    if api == "openai":
        if stream:
            kw.setdefault("stream_options", {"include_usage": True})
        return await call_openai(st.url, kind, stream, **kw)
    return await call_anthropic(st.url, kind, stream, **kw)


def tokens_of(got: Got, api: str, stream: bool) -> tuple[int, int, int]:
    """(input, output, reasoning) tokens as the caller was told."""
    if api == "openai":
        usage = got.message.usage if not stream else next(c.usage for c in got.events if c.usage is not None)
        details = usage.completion_tokens_details
        return usage.prompt_tokens, usage.completion_tokens, details.reasoning_tokens if details else 0
    usage = got.message.usage
    details = usage.output_tokens_details
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return usage.input_tokens + cached, usage.output_tokens, details.thinking_tokens if details else 0


def tool_request(api: str, route: str, turn: str) -> dict[str, Any]:
    """A request with tools, an image and reasoning; ``turn`` "call" gets tool calls, "result" sends
    a tool result back (the answer is text)."""
    if api == "openai":
        messages: list[Any] = [image_message("Call get_weather and get_time for this place", "openai")]
        if turn == "result":
            messages += [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_prev1",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_prev1", "content": "noon"},
            ]
        return {
            "model": route,
            "messages": messages,
            "tools": OPENAI_TOOLS,
            "max_completion_tokens": 3000,
            "reasoning_effort": "low",
        }
    messages = [image_message("Call get_weather and get_time for this place", "anthropic")]
    if turn == "result":
        messages += [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_prev1", "name": "get_time", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_prev1", "content": "noon"}],
            },
        ]
    return {
        "model": route,
        "messages": messages,
        "tools": ANTHROPIC_TOOLS,
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }


# ---------------------------------------------------------------- streamed cost == plain cost


@pytest.mark.parametrize("turn", ["call", "result"])
@pytest.mark.parametrize(
    ("api", "route", "provider"),
    [
        ("openai", "to_claude", "claude"),
        ("anthropic", "to_gpt", "gpt"),
        ("openai", "to_gpt", "gpt"),
        ("anthropic", "to_claude", "claude"),
    ],
    ids=["openai-to-claude", "anthropic-to-gpt", "openai-same", "anthropic-same"],
)
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_streamed_cost_equals_plain_cost_with_tools_images_and_reasoning(
    st: ThreadStack, kind: str, api: str, route: str, provider: str, turn: str
) -> None:
    request = tool_request(api, route, turn)
    plain = await call(st, api, kind, False, **request)
    streamed = await call(st, api, kind, True, **request)
    for got in (plain, streamed):
        assert got.status == 200, got.body
        assert got.error is None
        assert got.headers["x-greenlang-provider"] == provider
    assert len(st.upstream()) == 2
    plain_tokens = tokens_of(plain, api, False)
    assert plain_tokens == tokens_of(streamed, api, True)
    assert plain_tokens[2] == 8  # the simulator thought 8 words: reasoning tokens reach the caller
    [plain_record] = st.records(plain.request_id)
    [stream_record] = st.records(streamed.request_id)
    assert plain_record.total_cost_nanos > 0
    assert (plain_record.input_tokens, plain_record.output_tokens) == plain_tokens[:2]
    assert (stream_record.input_tokens, stream_record.output_tokens) == plain_tokens[:2]
    assert stream_record.total_cost_nanos == plain_record.total_cost_nanos
    assert not stream_record.estimated
    assert float(plain.headers["x-greenlang-cost-usd"]) == pytest.approx(
        plain_record.total_cost_nanos / 1e9, abs=1e-9
    )
    if turn == "call":  # the same tool calls either way
        if api == "openai":
            want = [
                (c.id, c.function.name, c.function.arguments)
                for c in plain.message.choices[0].message.tool_calls
            ]
            got_calls = [
                (c.id, c.function.name, c.function.arguments)
                for c in streamed.message.choices[0].message.tool_calls
            ]
        else:
            want = [(b.id, b.name, b.input) for b in plain.message.content if b.type == "tool_use"]
            got_calls = [(b.id, b.name, b.input) for b in streamed.message.content if b.type == "tool_use"]
        assert len(want) == 2
        assert got_calls == want


# ---------------------------------------------------------------- honest mid-stream errors


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_openai_stream_cut_inside_a_tool_call_ends_with_an_error_and_is_not_continued(
    st: ThreadStack, kind: str
) -> None:
    st.sim.faults.add(FaultRule("stream_cut", model=CLAUDE, after=2))  # the call opened, half its arguments
    got = await call_openai(
        st.url,
        kind,
        True,
        model="claude_then_gpt",
        max_completion_tokens=200,
        tools=OPENAI_TOOLS,
        messages=[{"role": "user", "content": "Call get_weather now"}],
        stream_options={"include_usage": True},
    )
    assert got.status == 200
    assert got.headers["x-greenlang-provider"] == "claude"
    assert got.error is not None  # the API's error event, not a clean finish
    assert got.message is None
    finishes = [c.choices[0].finish_reason for c in got.events if c.choices and c.choices[0].finish_reason]
    assert finishes == []
    opened = [
        tc.function.name
        for c in got.events
        if c.choices
        for tc in c.choices[0].delta.tool_calls or ()
        if tc.id
    ]
    assert opened == ["get_weather"]  # the caller had seen the call begin
    # no continuation of a partial tool call: the upstream got the one request, no prefill anywhere
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/messages"]
    assert all(e["body"]["messages"][-1]["role"] == "user" for e in entries)
    # one ledger record for the one upstream call: it billed the prompt and the tokens delivered
    records = st.records(got.request_id)
    assert [(r.provider, r.estimated) for r in records] == [("claude", True)]
    assert records[0].input_tokens > 0
    assert records[0].output_tokens > 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_anthropic_stream_cut_inside_a_tool_call_ends_with_an_error_event(
    st: ThreadStack, kind: str
) -> None:
    st.sim.faults.add(FaultRule("stream_cut", model=GPT, after=2))
    got = await call_anthropic(
        st.url,
        kind,
        True,
        model="gpt_then_claude",
        max_tokens=200,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "Call get_weather now"}],
    )
    assert got.status == 200
    assert got.headers["x-greenlang-provider"] == "gpt_lead"
    assert got.error is not None
    assert got.message is None
    types = [e.type for e in got.events]
    assert "message_stop" not in types
    starts = [e.content_block.type for e in got.events if e.type == "content_block_start"]
    assert starts == ["tool_use"]
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/chat/completions"]
    records = st.records(got.request_id)
    assert [(r.provider, r.estimated) for r in records] == [("gpt_lead", True)]
    assert records[0].input_tokens > 0
    assert records[0].output_tokens > 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_stream_cut_inside_a_thinking_block_is_not_continued(st: ThreadStack, kind: str) -> None:
    st.sim.faults.add(FaultRule("stream_cut", model=STORY, path="/v1/messages", after=3))
    got = await call_anthropic(
        st.url,
        kind,
        True,
        model="story",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then tell a story"}],
    )
    assert got.status == 200
    assert got.error is not None
    starts = [e.content_block.type for e in got.events if e.type == "content_block_start"]
    assert starts == ["thinking"]
    assert "message_stop" not in [e.type for e in got.events]
    assert [e["path"] for e in st.upstream()] == ["/v1/messages"]
    records = st.records(got.request_id)
    assert [(r.provider, r.estimated) for r in records] == [("claude_story", True)]
    assert records[0].output_tokens > 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_text_after_a_thinking_block_is_still_continued_on_the_next_provider(
    st: ThreadStack, kind: str
) -> None:
    request: dict[str, Any] = {
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Think, then tell a story"}],
    }
    whole = await call_anthropic(st.url, kind, False, model="story", **request)
    text = "".join(b.text for b in whole.message.content if b.type == "text")
    assert len(text.split(" ")) == 16
    st.reset()
    # 8 thinking words + the signature + 3 words of text, then the cut
    st.sim.faults.add(FaultRule("stream_cut", model=STORY, path="/v1/messages", after=12))
    got = await call_anthropic(st.url, kind, True, model="story", **request)
    assert got.error is None, got.error
    assert "".join(b.text for b in got.message.content if b.type == "text") == text
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/messages", "/v1/chat/completions"]
    prefill = entries[1]["body"]["messages"][-1]
    assert prefill["role"] == "assistant"
    assert (
        prefill["content"] if isinstance(prefill["content"], str) else prefill["content"][0]["text"]
    ).strip() == (" ".join(text.split(" ")[:3]))
    records = st.records(got.request_id)
    assert [(r.request_id, r.provider) for r in records] == [
        (got.request_id, "claude_story"),
        (got.request_id + ".2", "gpt_story"),
    ]


# ---------------------------------------------------------------- failover before the first byte


@pytest.mark.parametrize("fault", ["http_500", "reset"])
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_caller_fails_over_from_gpt_to_claude_with_the_request_translated(
    st: ThreadStack, kind: str, stream: bool, fault: str
) -> None:
    st.sim.faults.add(FaultRule(fault, model=GPT))
    got = await call(
        st,
        "openai",
        kind,
        stream,
        model="gpt_then_claude",
        max_completion_tokens=300,
        tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.5,
        messages=[
            {"role": "system", "content": "Be brief."},
            image_message("What is the weather here?", "openai"),
        ],
    )
    assert got.status == 200, got.body
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "claude_tail"
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/chat/completions", "/v1/messages"]
    assert entries[0]["body"]["tools"] == OPENAI_TOOLS  # the first try: the caller's body
    body = entries[1]["body"]
    assert body["model"] == CLAUDE
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["temperature"] == 0.5
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    image = body["messages"][0]["content"][1]
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": PNG}
    [tool_call] = got.message.choices[0].message.tool_calls
    assert tool_call.id.startswith("toolu_sim")
    assert set(orjson.loads(tool_call.function.arguments)) == {"city", "days"}
    # one record, for the one upstream call that answered
    assert [r.provider for r in st.records(got.request_id)] == ["claude_tail"]


@pytest.mark.parametrize("fault", ["overloaded", "reset"])
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_caller_fails_over_from_claude_to_gpt_with_the_request_translated(
    st: ThreadStack, kind: str, stream: bool, fault: str
) -> None:
    st.sim.faults.add(FaultRule(fault, model=CLAUDE))
    got = await call(
        st,
        "anthropic",
        kind,
        stream,
        model="claude_then_gpt",
        max_tokens=3000,
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "any"},
        thinking={"type": "enabled", "budget_tokens": 2000},
        system="Be brief.",
        messages=[image_message("Call get_weather and get_time here", "anthropic")],
    )
    assert got.status == 200, got.body
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "gpt"
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/messages", "/v1/chat/completions"]
    body = entries[1]["body"]
    assert body["model"] == GPT
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA},
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert body["tool_choice"] == "required"
    assert body["reasoning_effort"] == "medium"
    assert body["max_completion_tokens"] == 3000
    assert body["messages"][0]["role"] == "system"
    parts = body["messages"][1]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    calls = [(b.name, b.id[:8]) for b in got.message.content if b.type == "tool_use"]
    assert calls == [("get_weather", "call_sim"), ("get_time", "call_sim")]
    assert got.message.usage.output_tokens_details.thinking_tokens == 8
    assert [r.provider for r in st.records(got.request_id)] == ["gpt"]
