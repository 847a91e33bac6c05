"""Across APIs (docs/fields.md, both request tables and the responses table): an OpenAI caller served
by Claude (route ``to_claude``: its only provider is an ``anthropic`` one) and an Anthropic caller
served by GPT (route ``to_gpt``), plain and streamed, with the official SDKs' sync and async
clients. One test per row the simulator can show: what the upstream received (the simulator's
request log) and what the caller got.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from fields_support import (
    FIXED_CLAUDE,
    FIXED_GPT,
    MODES,
    Got,
    ThreadStack,
    anthropic_sse,
    call_anthropic,
    call_openai,
    mode_id,
    openai_sse,
)
from gateway_support import SIM_KEY

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TIME_SCHEMA = {
    "type": "object",
    "properties": {"tz": {"type": "string"}, "hours": {"type": "integer"}},
    "required": ["tz", "hours"],
}
OPENAI_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": WEATHER_SCHEMA,
            "strict": True,
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}},
]
ANTHROPIC_TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "input_schema": TIME_SCHEMA},
]
BOTH = "Call get_weather and get_time please"


@pytest.fixture(scope="module")
def st() -> Iterator[ThreadStack]:
    with ThreadStack() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(st: ThreadStack) -> None:
    st.reset()


# ---------------------------------------------------------------- helpers


async def openai_to_claude(st: ThreadStack, kind: str, stream: bool, **kw: Any) -> tuple[Got, dict[str, Any]]:
    """An OpenAI caller's request on the Claude-only route: (what it got, what Claude received)."""
    kw.setdefault("model", "to_claude")
    if stream:
        kw.setdefault("stream_options", {"include_usage": True})
    got = await call_openai(st.url, kind, stream, **kw)
    assert got.status == 200, (got.body, got.error)
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "claude"
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/messages"]
    return got, entries[0]["body"]


async def anthropic_to_gpt(st: ThreadStack, kind: str, stream: bool, **kw: Any) -> tuple[Got, dict[str, Any]]:
    kw.setdefault("model", "to_gpt")
    got = await call_anthropic(st.url, kind, stream, **kw)
    assert got.status == 200, (got.body, got.error)
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "gpt"
    entries = st.upstream()
    assert [e["path"] for e in entries] == ["/v1/chat/completions"]
    return got, entries[0]["body"]


def replay(st: ThreadStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the simulator answers (plain) to the body the upstream received: the reply the gateway
    had to translate for its caller."""
    plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    headers = {"x-api-key": SIM_KEY, "anthropic-version": "2023-06-01", "authorization": f"Bearer {SIM_KEY}"}
    response = httpx2.post(st.sim.base_url + path, json=plain, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def oa_choice(got: Got) -> Any:
    return got.message.choices[0]


def oa_calls(got: Got) -> list[tuple[str, str, Any]]:
    calls = oa_choice(got).message.tool_calls or []
    return [(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in calls]


def oa_reasoning(got: Got, stream: bool) -> str | None:
    """``reasoning_content`` (not an SDK field: read from the extras / the chunks)."""
    if not stream:
        value = (oa_choice(got).message.model_extra or {}).get("reasoning_content")
        return value if isinstance(value, str) else None
    pieces = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in got.events if c.choices
    ]
    return "".join(p for p in pieces if isinstance(p, str)) or None


def oa_usage(got: Got, stream: bool) -> Any:
    if not stream:
        return got.message.usage
    usages = [c.usage for c in got.events if c.usage is not None]
    assert len(usages) == 1
    return usages[0]


def an_calls(got: Got) -> list[tuple[str, str, Any]]:
    return [(b.id, b.name, b.input) for b in got.message.content if b.type == "tool_use"]


def an_text(got: Got) -> str:
    return "".join(b.text for b in got.message.content if b.type == "text")


def claude_calls(answer: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(b["id"], b["name"], b["input"]) for b in answer["content"] if b["type"] == "tool_use"]


def gpt_calls(answer: dict[str, Any]) -> list[tuple[str, str, Any]]:
    calls = answer["choices"][0]["message"].get("tool_calls") or []
    return [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls]


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, list):
        return "\n\n".join(b["text"] for b in system)
    return str(system or "")


def user_blocks(body: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    content = body["messages"][index]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


# ---------------------------------------------------------------- OpenAI caller → Claude: messages


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_system_developer_and_text_parts_become_system_and_text_blocks(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=40,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}],
            },
        ],
    )
    assert system_text(body) == "Be brief."
    assert body["max_tokens"] == 40
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert user_blocks(body) == [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]
    assert "n" not in body
    assert "stream_options" not in body
    assert body["stream"] is stream
    answer = replay(st, "/v1/messages", body)
    assert oa_choice(got).message.content == answer["content"][0]["text"]
    assert oa_choice(got).finish_reason == "stop"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_image_url_becomes_base64_or_url_image_source(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=20,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ],
    )
    blocks = user_blocks(body)
    assert blocks[0] == {"type": "text", "text": "Compare"}
    assert {k: blocks[1][k] for k in ("type", "source")} == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert {k: blocks[2][k] for k in ("type", "source")} == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }
    answer = replay(st, "/v1/messages", body)
    # the images were counted as input (the simulator: 85 tokens each): billed from the upstream's usage
    assert oa_usage(got, stream).prompt_tokens == answer["usage"]["input_tokens"]


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_pdf_file_part_becomes_a_base64_document(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    _got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=20,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarise"},
                    {
                        "type": "file",
                        "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "spec.pdf"},
                    },
                ],
            }
        ],
    )
    document = user_blocks(body)[1]
    assert document["type"] == "document"
    assert document["source"] == {"type": "base64", "media_type": "application/pdf", "data": PDF}
    assert document.get("title", "spec.pdf") == "spec.pdf"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_temperature_top_p_stop_and_user_are_translated(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    messages = [{"role": "user", "content": "Tell me a story"}]
    first, _ = await openai_to_claude(st, "async", False, messages=messages, max_completion_tokens=30)
    words = first.message.choices[0].message.content.split(" ")
    assert len(words) >= 4
    stop_word = words[3]
    st.reset()
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        messages=messages,
        max_completion_tokens=30,
        temperature=0.3,
        top_p=0.8,
        stop=[stop_word, "never-said"],
        user="user-42",
    )
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == [stop_word, "never-said"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert "stop" not in body
    assert "user" not in body
    assert "x-greenlang-dropped-params" not in got.headers
    assert oa_choice(got).message.content == " ".join(words[:3])
    assert oa_choice(got).finish_reason == "stop"  # stop_sequence


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_legacy_max_tokens_becomes_max_tokens(st: ThreadStack, kind: str, stream: bool) -> None:
    got, body = await openai_to_claude(
        st, kind, stream, max_tokens=3, messages=[{"role": "user", "content": "Long story please"}]
    )
    assert body["max_tokens"] == 3
    assert oa_choice(got).finish_reason == "length"
    assert oa_usage(got, stream).completion_tokens == 3


# ---------------------------------------------------------------- OpenAI caller → Claude: tools


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_tools_become_anthropic_tools_and_parallel_calls_come_back(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=200,
        tools=OPENAI_TOOLS,
        messages=[{"role": "user", "content": BOTH}],
    )
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_SCHEMA,
            "strict": True,
        },
        {"name": "get_time", "input_schema": TIME_SCHEMA},
    ]
    assert body.get("tool_choice", {"type": "auto"}) == {"type": "auto"}
    answer = replay(st, "/v1/messages", body)
    expected = claude_calls(answer)
    assert [name for _, name, _ in expected] == ["get_weather", "get_time"]
    assert all(call_id.startswith("toolu_sim") for call_id, _, _ in expected)
    assert oa_calls(got) == expected  # ids kept, arguments the same JSON
    assert oa_choice(got).finish_reason == "tool_calls"
    assert oa_choice(got).message.content in (None, "")
    assert oa_usage(got, stream).completion_tokens == answer["usage"]["output_tokens"]
    if stream:  # the deltas: each call opened with its id and name, at ordinals 0 and 1
        opened = [
            (tc.index, tc.id, tc.function.name)
            for c in got.events
            if c.choices
            for tc in c.choices[0].delta.tool_calls or ()
            if tc.id
        ]
        assert opened == [(0, expected[0][0], "get_weather"), (1, expected[1][0], "get_time")]
        pieces = [
            tc.function.arguments
            for c in got.events
            if c.choices
            for tc in c.choices[0].delta.tool_calls or ()
            if tc.index == 1 and tc.function.arguments
        ]
        assert len(pieces) >= 2  # arguments arrive in pieces (input_json_delta → delta.tool_calls)
        assert orjson.loads("".join(pieces)) == expected[1][2]


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_parallel_tool_calls_false_disables_parallel_use_and_gets_one_call(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=200,
        tools=OPENAI_TOOLS,
        parallel_tool_calls=False,
        messages=[{"role": "user", "content": BOTH}],
    )
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "parallel_tool_calls" not in body
    assert [name for _, name, _ in oa_calls(got)] == ["get_weather"]


@pytest.mark.parametrize(
    ("choice", "sent", "names"),
    [
        ("auto", {"type": "auto"}, ["get_time"]),
        ("required", {"type": "any"}, ["get_time"]),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
            ["get_weather"],
        ),
        ("none", {"type": "none"}, []),
    ],
    ids=["auto", "required", "named", "none"],
)
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_tool_choice_is_translated(
    st: ThreadStack, kind: str, stream: bool, choice: Any, sent: dict[str, Any], names: list[str]
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=20,
        tools=OPENAI_TOOLS,
        tool_choice=choice,
        messages=[{"role": "user", "content": "What is get_time in Tokyo?"}],
    )
    assert body["tool_choice"] == sent
    assert [name for _, name, _ in oa_calls(got)] == names
    if names:
        assert oa_choice(got).finish_reason == "tool_calls"
    else:  # tool_choice none: a text answer
        assert oa_choice(got).finish_reason in ("stop", "length")
        assert oa_choice(got).message.content


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_two_turn_tool_conversation_openai_caller_claude_keeps_ids(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    messages: list[Any] = [{"role": "user", "content": BOTH}]
    first, _ = await openai_to_claude(
        st, kind, stream, max_completion_tokens=200, tools=OPENAI_TOOLS, messages=messages
    )
    calls = oa_choice(first).message.tool_calls
    ids = [c.id for c in calls]
    assert len(set(ids)) == 2
    st.reset()
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        },
        {"role": "tool", "tool_call_id": ids[0], "content": "sunny"},
        {"role": "tool", "tool_call_id": ids[1], "content": [{"type": "text", "text": "noon"}]},
    ]
    second, body = await openai_to_claude(
        st, kind, stream, max_completion_tokens=5, tools=OPENAI_TOOLS, messages=messages
    )
    assistant, results = body["messages"][1], body["messages"][2]
    assert assistant["role"] == "assistant"
    uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert [(b["id"], b["name"], b["input"]) for b in uses] == [
        (c.id, c.function.name, orjson.loads(c.function.arguments)) for c in calls
    ]
    assert results["role"] == "user"  # both results in one user turn
    assert [(b["type"], b["tool_use_id"]) for b in results["content"]] == [
        ("tool_result", ids[0]),
        ("tool_result", ids[1]),
    ]
    texts = [
        b["content"] if isinstance(b["content"], str) else b["content"][0]["text"] for b in results["content"]
    ]
    assert texts == ["sunny", "noon"]
    # the simulator echoes each result by its id: the ids went round the whole trip
    content = oa_choice(second).message.content
    assert content.startswith(f"Tool {ids[0]} said: sunny. Tool {ids[1]} said: noon.")


# ------------------------------------------------ OpenAI caller → Claude: structured output, reasoning


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_json_schema_becomes_output_config_format(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=100,
        messages=[{"role": "user", "content": "A person"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": schema}
    assert "response_format" not in body
    answer = replay(st, "/v1/messages", body)
    content = oa_choice(got).message.content
    assert orjson.loads(content) == orjson.loads(answer["content"][0]["text"])
    assert set(orjson.loads(content)) == {"name", "age"}
    assert oa_choice(got).finish_reason == "stop"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_json_object_is_a_forced_tool_whose_arguments_are_the_content(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=100,
        messages=[{"role": "user", "content": "Reply in JSON"}],
        response_format={"type": "json_object"},
    )
    [tool] = body["tools"]
    assert tool["name"] == "json_object"
    assert tool["input_schema"] == {"type": "object"}
    assert body["tool_choice"] == {"type": "tool", "name": "json_object"}
    answer = replay(st, "/v1/messages", body)
    [(_, name, arguments)] = claude_calls(answer)
    assert name == "json_object"
    message = oa_choice(got).message
    assert not message.tool_calls  # the caller asked for JSON content, not a tool call
    assert orjson.loads(message.content) == arguments
    assert oa_choice(got).finish_reason == "stop"


async def test_openai_response_format_text_sends_nothing(st: ThreadStack) -> None:
    got, body = await openai_to_claude(
        st,
        "sync",
        False,
        max_completion_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "text"},
        tools=OPENAI_TOOLS,
        tool_choice="none",
    )
    assert "output_config" not in body
    assert "response_format" not in body
    assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time"]  # no forced json tool
    assert oa_choice(got).message.content


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)],
)
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_reasoning_effort_becomes_a_thinking_budget_and_reasoning_comes_back(
    st: ThreadStack, kind: str, stream: bool, effort: str, budget: int
) -> None:
    got, body = await openai_to_claude(
        st,
        kind,
        stream,
        max_completion_tokens=8000,
        reasoning_effort=effort,
        messages=[{"role": "user", "content": "Think first"}],
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert "reasoning_effort" not in body
    answer = replay(st, "/v1/messages", body)
    thinking = [b for b in answer["content"] if b["type"] == "thinking"]
    assert len(thinking) == 1
    assert oa_reasoning(got, stream) == thinking[0]["thinking"]
    assert oa_choice(got).message.content == answer["content"][1]["text"]
    usage = oa_usage(got, stream)
    assert usage.completion_tokens_details.reasoning_tokens == 8  # the simulator thinks 8 words
    assert usage.completion_tokens == answer["usage"]["output_tokens"]


async def test_openai_reasoning_effort_none_sends_no_thinking(st: ThreadStack) -> None:
    got, body = await openai_to_claude(
        st,
        "async",
        False,
        max_completion_tokens=8000,
        reasoning_effort="none",
        messages=[{"role": "user", "content": "No thinking"}],
    )
    assert "thinking" not in body
    assert oa_reasoning(got, False) is None


# ---------------------------------------------------------------- Anthropic caller → GPT: messages


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_system_blocks_and_max_tokens_become_a_system_message_and_max_completion_tokens(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=30,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "you"}]}
        ],
    )
    assert body["max_completion_tokens"] == 30
    assert "max_tokens" not in body
    first = body["messages"][0]
    assert first["role"] == "system"
    assert (
        first["content"] if isinstance(first["content"], str) else first["content"][0]["text"]
    ) == "Be brief."
    parts = body["messages"][1]["content"]
    assert parts == [{"type": "text", "text": "Hello"}, {"type": "text", "text": "you"}]
    if stream:
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
    answer = replay(st, "/v1/chat/completions", body)
    assert an_text(got) == answer["choices"][0]["message"]["content"]
    assert got.message.stop_reason == "end_turn"
    assert got.message.usage.output_tokens == answer["usage"]["completion_tokens"]


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_images_become_image_url_parts(st: ThreadStack, kind: str, stream: bool) -> None:
    _got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=20,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "text", "text": "Compare"},
                ],
            }
        ],
    )
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    assert parts[1]["image_url"]["url"] == "https://example.com/cat.jpg"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_pdf_document_becomes_a_file_part(st: ThreadStack, kind: str, stream: bool) -> None:
    _got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=20,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "spec.pdf",
                    },
                    {"type": "text", "text": "Summarise"},
                ],
            }
        ],
    )
    part = body["messages"][0]["content"][0]
    assert part["type"] == "file"
    assert part["file"]["file_data"] == f"data:application/pdf;base64,{PDF}"
    assert part["file"]["filename"] == "spec.pdf"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_sampling_stop_sequences_and_user_id_are_translated(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    messages = [{"role": "user", "content": "Tell me a story"}]
    first, _ = await anthropic_to_gpt(st, "async", False, max_tokens=30, messages=messages)
    words = an_text(first).split(" ")
    stop_word = words[2]
    st.reset()
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=30,
        messages=messages,
        stop_sequences=[stop_word],
        metadata={"user_id": "user-42"},
        extra_body={"temperature": 0.4, "top_p": 0.7},
    )
    assert body["temperature"] == 0.4
    assert body["top_p"] == 0.7
    assert body["stop"] == [stop_word]
    assert body["user"] == "user-42"
    assert "stop_sequences" not in body
    assert "metadata" not in body
    assert "x-greenlang-dropped-params" not in got.headers
    assert an_text(got) == " ".join(words[:2])
    # OpenAI says only "stop": the caller gets end_turn or stop_sequence, never max_tokens
    assert got.message.stop_reason in ("stop_sequence", "end_turn")


# ---------------------------------------------------------------- Anthropic caller → GPT: tools


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_tools_become_function_tools_and_parallel_calls_come_back_as_tool_use(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await anthropic_to_gpt(
        st, kind, stream, max_tokens=200, tools=ANTHROPIC_TOOLS, messages=[{"role": "user", "content": BOTH}]
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}},
    ]
    assert body.get("tool_choice", "auto") == "auto"
    answer = replay(st, "/v1/chat/completions", body)
    expected = gpt_calls(answer)
    assert [name for _, name, _ in expected] == ["get_weather", "get_time"]
    assert all(call_id.startswith("call_sim") for call_id, _, _ in expected)
    assert an_calls(got) == expected
    assert got.message.stop_reason == "tool_use"
    assert got.message.usage.output_tokens == answer["usage"]["completion_tokens"]
    if stream:
        kinds = [e.content_block.type for e in got.events if e.type == "content_block_start"]
        assert kinds == ["tool_use", "tool_use"]
        json_deltas = [
            e for e in got.events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        assert len(json_deltas) >= 4  # two pieces of each call's arguments


@pytest.mark.parametrize(
    ("choice", "sent", "names"),
    [
        ({"type": "auto"}, "auto", ["get_time"]),
        ({"type": "any"}, "required", ["get_time"]),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
            ["get_weather"],
        ),
        ({"type": "none"}, "none", []),
    ],
    ids=["auto", "any", "tool", "none"],
)
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_tool_choice_is_translated(
    st: ThreadStack, kind: str, stream: bool, choice: Any, sent: Any, names: list[str]
) -> None:
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=20,
        tools=ANTHROPIC_TOOLS,
        tool_choice=choice,
        messages=[{"role": "user", "content": "What is get_time in Tokyo?"}],
    )
    assert body["tool_choice"] == sent
    assert [name for _, name, _ in an_calls(got)] == names
    if names:
        assert got.message.stop_reason == "tool_use"
    else:  # tool_choice none: a text answer
        assert got.message.stop_reason in ("end_turn", "max_tokens")
        assert an_text(got)


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_disable_parallel_tool_use_becomes_parallel_tool_calls_false(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=200,
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": BOTH}],
    )
    assert body["parallel_tool_calls"] is False
    assert [name for _, name, _ in an_calls(got)] == ["get_weather"]


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_two_turn_tool_conversation_anthropic_caller_gpt_keeps_ids(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    messages: list[Any] = [{"role": "user", "content": BOTH}]
    first, _ = await anthropic_to_gpt(
        st, kind, stream, max_tokens=200, tools=ANTHROPIC_TOOLS, messages=messages
    )
    uses = [b for b in first.message.content if b.type == "tool_use"]
    ids = [b.id for b in uses]
    assert len(set(ids)) == 2
    st.reset()
    messages += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": b.id, "name": b.name, "input": b.input} for b in uses],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": ids[0], "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": ids[1],
                    "content": [{"type": "text", "text": "no clock"}],
                    "is_error": True,
                },
            ],
        },
    ]
    second, body = await anthropic_to_gpt(
        st, kind, stream, max_tokens=5, tools=ANTHROPIC_TOOLS, messages=messages
    )
    assistant = body["messages"][1]
    assert assistant["role"] == "assistant"
    assert [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [(b.id, b.name, b.input) for b in uses]
    tools = body["messages"][2:]
    assert [(m["role"], m["tool_call_id"]) for m in tools] == [("tool", ids[0]), ("tool", ids[1])]
    texts = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in tools]
    assert texts == ["sunny", "Error: no clock"]  # is_error as an "Error: " prefix
    assert an_text(second).startswith(f"Tool {ids[0]} said: sunny. Tool {ids[1]} said: Error: no clock.")


# ------------------------------------------------ Anthropic caller → GPT: structured output, reasoning


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_output_config_format_becomes_response_format_json_schema(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=100,
        messages=[{"role": "user", "content": "A person"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }
    assert "output_config" not in body
    answer = replay(st, "/v1/chat/completions", body)
    assert orjson.loads(an_text(got)) == orjson.loads(answer["choices"][0]["message"]["content"])
    assert got.message.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 2048}, "medium"),
        ({"type": "enabled", "budget_tokens": 4096}, "high"),
        ({"type": "adaptive"}, "medium"),
    ],
    ids=["1024", "2048", "4096", "adaptive"],
)
@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_thinking_becomes_reasoning_effort_and_thinking_tokens_come_back(
    st: ThreadStack, kind: str, stream: bool, thinking: dict[str, Any], effort: str
) -> None:
    got, body = await anthropic_to_gpt(
        st,
        kind,
        stream,
        max_tokens=8000,
        thinking=thinking,
        messages=[{"role": "user", "content": "Think first"}],
    )
    assert body["reasoning_effort"] == effort
    assert "thinking" not in body
    answer = replay(st, "/v1/chat/completions", body)
    assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 8
    usage = got.message.usage
    assert usage.output_tokens == answer["usage"]["completion_tokens"]
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 8


async def test_anthropic_thinking_disabled_sends_nothing(st: ThreadStack) -> None:
    _got, body = await anthropic_to_gpt(
        st,
        "async",
        False,
        max_tokens=100,
        thinking={"type": "disabled"},
        messages=[{"role": "user", "content": "No thinking"}],
    )
    assert "reasoning_effort" not in body


@pytest.mark.parametrize(("effort", "sent"), [("low", "low"), ("high", "high"), ("max", "xhigh")])
async def test_anthropic_output_config_effort_becomes_reasoning_effort(
    st: ThreadStack, effort: str, sent: str
) -> None:
    _got, body = await anthropic_to_gpt(
        st,
        "async",
        True,
        max_tokens=100,
        output_config={"effort": effort},
        messages=[{"role": "user", "content": "Effort"}],
    )
    assert body["reasoning_effort"] == sent


# ---------------------------------------------------------------- refusals across APIs (scripted upstreams)


GPT_REFUSAL: dict[str, Any] = {
    "id": "chatcmpl-up",
    "object": "chat.completion",
    "created": 1,
    "model": FIXED_GPT,
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
}
GPT_REFUSAL_STREAM = openai_sse(
    *(
        {
            "id": "chatcmpl-up",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": FIXED_GPT,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        for delta, finish in [
            ({"role": "assistant", "content": None}, None),
            ({"refusal": "I can't "}, None),
            ({"refusal": "help with that."}, None),
            ({}, "stop"),
        ]
    ),
    {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": FIXED_GPT,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    },
)
STOP_DETAILS = {"type": "refusal", "category": "cyber", "explanation": "This is not allowed."}
CLAUDE_REFUSAL: dict[str, Any] = {
    "id": "msg_up",
    "type": "message",
    "role": "assistant",
    "model": FIXED_CLAUDE,
    "content": [{"type": "text", "text": "I won't."}],
    "stop_reason": "refusal",
    "stop_sequence": None,
    "stop_details": STOP_DETAILS,
    "usage": {"input_tokens": 9, "output_tokens": 3},
}
CLAUDE_REFUSAL_STREAM = anthropic_sse(
    {
        "type": "message_start",
        "message": {
            **CLAUDE_REFUSAL,
            "content": [],
            "stop_reason": None,
            "stop_details": None,
            "usage": {"input_tokens": 9, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I won't."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "refusal", "stop_sequence": None, "stop_details": STOP_DETAILS},
        "usage": {"output_tokens": 3},
    },
    {"type": "message_stop"},
)


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_an_openai_refusal_reaches_an_anthropic_caller_as_text_and_stop_reason_refusal(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    st.scripted.plain["/v1/chat/completions"] = GPT_REFUSAL
    st.scripted.stream["/v1/chat/completions"] = GPT_REFUSAL_STREAM
    got = await call_anthropic(
        st.url,
        kind,
        stream,
        model="to_fixed_gpt",
        max_tokens=50,
        messages=[{"role": "user", "content": "something bad"}],
    )
    assert got.status == 200
    assert got.error is None
    assert got.message.stop_reason == "refusal"
    assert an_text(got) == "I can't help with that."
    assert got.message.usage.output_tokens == 6


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_an_anthropic_refusal_reaches_an_openai_caller_as_refusal_and_content_filter(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    st.scripted.plain["/v1/messages"] = CLAUDE_REFUSAL
    st.scripted.stream["/v1/messages"] = CLAUDE_REFUSAL_STREAM
    got = await call_openai(
        st.url,
        kind,
        stream,
        model="to_fixed_claude",
        max_completion_tokens=50,
        messages=[{"role": "user", "content": "something bad"}],
    )
    assert got.status == 200
    assert got.error is None
    choice = oa_choice(got)
    assert choice.finish_reason == "content_filter"
    # what Claude said is the content; its stop_details explanation is the refusal (wire.anthropic)
    assert choice.message.content == "I won't."
    assert choice.message.refusal == "This is not allowed."


# ------------------------------------------------ reasoning text of an OpenAI-compatible upstream


GPT_REASONING: dict[str, Any] = {
    "id": "chatcmpl-up",
    "object": "chat.completion",
    "created": 1,
    "model": FIXED_GPT,
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "reasoning_content": "First I think.",
                "content": "Then I answer.",
            },
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 7,
        "total_tokens": 16,
        "completion_tokens_details": {"reasoning_tokens": 4},
    },
}
GPT_REASONING_STREAM = openai_sse(
    *(
        {
            "id": "chatcmpl-up",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": FIXED_GPT,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        for delta, finish in [
            ({"role": "assistant", "content": ""}, None),
            ({"reasoning_content": "First "}, None),
            ({"reasoning_content": "I think."}, None),
            ({"content": "Then "}, None),
            ({"content": "I answer."}, None),
            ({}, "stop"),
        ]
    ),
    {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": FIXED_GPT,
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 7,
            "total_tokens": 16,
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    },
)


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_reasoning_content_reaches_an_anthropic_caller_as_a_thinking_block(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    st.scripted.plain["/v1/chat/completions"] = GPT_REASONING
    st.scripted.stream["/v1/chat/completions"] = GPT_REASONING_STREAM
    got = await call_anthropic(
        st.url,
        kind,
        stream,
        model="to_fixed_gpt",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think"}],
    )
    assert got.status == 200
    assert got.error is None
    assert [
        (b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in got.message.content
    ] == [("thinking", "First I think."), ("text", "Then I answer.")]
    assert got.message.stop_reason == "end_turn"
    assert got.message.usage.output_tokens == 7
    assert got.message.usage.output_tokens_details.thinking_tokens == 4
    assert st.scripted.seen[0]["body"]["reasoning_effort"] == "low"
