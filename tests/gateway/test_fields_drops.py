"""No silent drops (docs/fields.md): across APIs, a hint the provider cannot express is left out and
named in ``x-greenlang-dropped-params`` and the ledger record; a field that carries meaning makes
the provider unable to serve the request — skipped (its breaker not charged) when another can,
else a 400 naming the field and the provider, never a 200 without it; ``[[routes]] drop_params =
false`` refuses the hints as well.

Official SDKs through the gateway in front of the simulator; every case plain and streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fields_support import MODES, Got, ThreadStack, call_anthropic, call_openai, mode_id

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
TOOL = {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}
STREAMS = [False, True]


@pytest.fixture(scope="module")
def st() -> Iterator[ThreadStack]:
    with ThreadStack() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(st: ThreadStack) -> None:
    st.reset()


def _stream_id(value: bool) -> str:
    return "stream" if value else "plain"


def assert_dropped(st: ThreadStack, got: Got, names: list[str]) -> dict[str, Any]:
    """The answer came (200, no error event), names exactly ``names`` as dropped, and so does its
    ledger record; returns the body the upstream received."""
    assert got.status == 200, (got.body, got.error)
    assert got.error is None
    assert got.message is not None
    assert got.dropped == names
    [record] = st.records(got.request_id)
    assert list(record.dropped_params) == names
    [entry] = st.upstream()
    body: dict[str, Any] = entry["body"]
    return body


def assert_refused(st: ThreadStack, got: Got, field: str, providers: list[str], route: str) -> None:
    """A 400 naming ``field`` and each provider; the upstream never called, no ledger record, and no
    provider of the route charged with a failure."""
    assert got.status == 400, (got.status, got.body)
    assert got.body is not None
    message = str(got.body["error"]["message"])
    assert field in message, message
    for provider in providers:
        assert provider in message, message
    assert st.upstream() == []
    assert st.records(got.headers["x-request-id"]) == []
    assert set(st.calls_since_reset(route).values()) == {(0, 0)}  # nobody called, nobody charged
    assert {m["circuit_breaker_state"] for m in st.router_metrics(route).values()} == {"closed"}


# ---------------------------------------------------------------- dropped hints: OpenAI caller → Claude


OPENAI_HINTS: list[tuple[str, dict[str, Any]]] = [
    ("seed", {"seed": 7}),
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("logit_bias", {"logit_bias": {"50256": -100}}),
    ("service_tier", {"service_tier": "flex"}),
    ("store", {"store": True}),
    ("metadata", {"metadata": {"team": "a"}}),
    ("prompt_cache_key", {"prompt_cache_key": "k1"}),
    ("prompt_cache_retention", {"prompt_cache_retention": "24h"}),
    ("safety_identifier", {"safety_identifier": "hashed-user"}),
    ("verbosity", {"verbosity": "low"}),
    ("prediction", {"prediction": {"type": "content", "content": "Hello"}}),
]


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
@pytest.mark.parametrize(("name", "fields"), OPENAI_HINTS, ids=[n for n, _ in OPENAI_HINTS])
async def test_each_openai_hint_is_dropped_named_and_not_sent_to_claude(
    st: ThreadStack, name: str, fields: dict[str, Any], stream: bool
) -> None:
    got = await call_openai(
        st.url, "async", stream, model="to_claude", max_completion_tokens=20, messages=HELLO, **fields
    )
    body = assert_dropped(st, got, [name])
    assert name not in body
    assert got.headers["x-greenlang-provider"] == "claude"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_several_openai_hints_and_message_names_are_all_named(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got = await call_openai(
        st.url,
        kind,
        stream,
        model="to_claude",
        max_completion_tokens=20,
        seed=1,
        presence_penalty=0.1,
        user="u-1",
        messages=[{"role": "user", "name": "ann", "content": "Hello there"}],
    )
    body = assert_dropped(st, got, ["seed", "presence_penalty", "messages.name"])
    assert "seed" not in body
    assert "presence_penalty" not in body
    assert all("name" not in m for m in body["messages"])
    assert body["metadata"] == {"user_id": "u-1"}  # user is translated, not dropped


# ---------------------------------------------------------------- dropped hints: Anthropic caller → GPT


def _anthropic_hints() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("top_k", {"extra_body": {"top_k": 5}}),
        ("service_tier", {"service_tier": "auto"}),
        ("inference_geo", {"inference_geo": "us"}),
        (
            "cache_control",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}
                        ],
                    }
                ]
            },
        ),
        (
            "cache_control",
            {"system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
        ),
        (
            "cache_control",
            {"tools": [{**TOOL, "cache_control": {"type": "ephemeral"}}], "tool_choice": {"type": "none"}},
        ),
        ("cache_control", {"cache_control": {"type": "ephemeral"}}),
        (
            "thinking",
            {
                "messages": [
                    {"role": "user", "content": "Hello"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
                            {"type": "redacted_thinking", "data": "b3BhcXVl"},
                            {"type": "text", "text": "Hi."},
                        ],
                    },
                    {"role": "user", "content": "Again"},
                ]
            },
        ),
    ]


ANTHROPIC_HINTS = _anthropic_hints()
ANTHROPIC_HINT_IDS = [
    "top_k",
    "service_tier",
    "inference_geo",
    "cache_control-block",
    "cache_control-system",
    "cache_control-tool",
    "cache_control-top",
    "thinking-blocks",
]


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
@pytest.mark.parametrize(("name", "fields"), ANTHROPIC_HINTS, ids=ANTHROPIC_HINT_IDS)
async def test_each_anthropic_hint_is_dropped_named_and_not_sent_to_gpt(
    st: ThreadStack, name: str, fields: dict[str, Any], stream: bool
) -> None:
    request: dict[str, Any] = {"max_tokens": 20, "messages": HELLO, **fields}
    got = await call_anthropic(st.url, "async", stream, model="to_gpt", **request)
    body = assert_dropped(st, got, [name])
    assert got.headers["x-greenlang-provider"] == "gpt"
    text = str(body)
    assert name not in body
    if name == "cache_control":
        assert "cache_control" not in text
        assert "ephemeral" not in text
    if name == "thinking":  # the earlier turn's thinking is gone, its text kept
        assistant = body["messages"][1]
        assert assistant["role"] == "assistant"
        content = assistant["content"]
        assert (content if isinstance(content, str) else "".join(p["text"] for p in content)) == "Hi."
        assert "Hmm." not in text
        assert "b3BhcXVl" not in text


# ------------------------------------------------ meaning-bearing fields: 400 naming field and provider


def _openai_refusals() -> list[tuple[str, dict[str, Any]]]:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    return [
        ("logprobs", {"logprobs": True}),
        ("top_logprobs", {"logprobs": True, "top_logprobs": 2}),
        ("n", {"n": 2}),
        (
            "input_audio",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hear"}, audio]}]},
        ),
        (
            "file",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Read"},
                            {"type": "file", "file": {"file_id": "file-abc123"}},
                        ],
                    }
                ]
            },
        ),
        ("custom", {"tools": [{"type": "custom", "custom": {"name": "grammar_tool"}}]}),
        ("functions", {"functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}]}),
        ("function_call", {"function_call": "auto", "extra_body": {}}),
        ("modalities", {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}),
        ("web_search_options", {"web_search_options": {}}),
        ("x_custom_field", {"extra_body": {"x_custom_field": {"a": 1}}}),
    ]


OPENAI_REFUSALS = _openai_refusals()


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
@pytest.mark.parametrize(("field", "fields"), OPENAI_REFUSALS, ids=[f for f, _ in OPENAI_REFUSALS])
async def test_each_meaning_bearing_openai_field_is_a_400_naming_it_and_claude(
    st: ThreadStack, field: str, fields: dict[str, Any], stream: bool
) -> None:
    if stream and field == "n":
        pytest.skip("n > 1 with a stream is refused by the OpenAI route itself (test_fields_same_api)")
    if field == "function_call":  # the deprecated pair: function_call only means something with functions
        fields = {
            "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
            "function_call": "auto",
        }
    request: dict[str, Any] = {"max_completion_tokens": 20, "messages": HELLO, **fields}
    got = await call_openai(st.url, "async", stream, model="to_claude", **request)
    assert_refused(st, got, field, ["claude"], "to_claude")
    assert got.body is not None
    assert got.body["error"]["type"] == "invalid_request_error"


def _anthropic_refusals() -> list[tuple[str, dict[str, Any]]]:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    return [
        ("web_search", {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]}),
        ("container", {"container": "container_abc"}),
        (
            "mcp_servers",
            {
                "extra_body": {
                    "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "ex"}]
                }
            },
        ),
        ("context_management", {"extra_body": {"context_management": {"edits": []}}}),
        (
            "document",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://example.com/a.pdf"},
                            },
                            {"type": "text", "text": "Read"},
                        ],
                    }
                ]
            },
        ),
        (
            "document",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "Plain text"},
                            },
                            {"type": "text", "text": "Read"},
                        ],
                    }
                ]
            },
        ),
        (
            "search_result",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "search_result",
                                "source": "https://example.com",
                                "title": "T",
                                "content": [{"type": "text", "text": "found"}],
                            },
                            {"type": "text", "text": "Use it"},
                        ],
                    }
                ]
            },
        ),
        (
            "messages[2].content[0]",
            {
                "tools": [TOOL],
                "messages": [
                    {"role": "user", "content": "Time?"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}],
                    },
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [image]}],
                    },
                ],
            },
        ),
        ("stop_sequences", {"stop_sequences": ["a", "b", "c", "d", "e"]}),
        ("x_custom_field", {"extra_body": {"x_custom_field": {"a": 1}}}),
    ]


ANTHROPIC_REFUSALS = _anthropic_refusals()
ANTHROPIC_REFUSAL_IDS = [
    "server-tool",
    "container",
    "mcp_servers",
    "context_management",
    "document-url",
    "document-text",
    "search_result",
    "tool_result-image",
    "stop_sequences-5",
    "unknown",
]


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
@pytest.mark.parametrize(("field", "fields"), ANTHROPIC_REFUSALS, ids=ANTHROPIC_REFUSAL_IDS)
async def test_each_meaning_bearing_anthropic_field_is_a_400_naming_it_and_gpt(
    st: ThreadStack, field: str, fields: dict[str, Any], stream: bool
) -> None:
    request: dict[str, Any] = {"max_tokens": 20, "messages": HELLO, **fields}
    got = await call_anthropic(st.url, "async", stream, model="to_gpt", **request)
    assert_refused(st, got, field, ["gpt"], "to_gpt")
    assert got.body is not None
    assert got.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_a_refusal_names_every_refused_field(st: ThreadStack, kind: str, stream: bool) -> None:
    got = await call_openai(
        st.url,
        kind,
        stream,
        model="to_claude",
        max_completion_tokens=20,
        messages=HELLO,
        logprobs=True,
        seed=3,
        extra_body={"x_custom_field": 1, "x_other": 2},
    )
    assert_refused(st, got, "logprobs", ["claude"], "to_claude")
    message = str(got.body)
    assert "x_custom_field" in message
    assert "x_other" in message


# ---------------------------------------------------------------- a route with one able provider: it serves


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_caller_logprobs_skip_claude_and_gpt_serves(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    got = await call_openai(
        st.url, kind, stream, model="claude_then_gpt", max_completion_tokens=5, messages=HELLO, logprobs=True
    )
    assert got.status == 200
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "gpt"
    [entry] = st.upstream()
    assert entry["path"] == "/v1/chat/completions"
    assert entry["body"]["logprobs"] is True
    if stream:
        entries = [
            e
            for c in got.events
            for ch in c.choices
            if ch.logprobs and ch.logprobs.content
            for e in ch.logprobs.content
        ]
    else:
        entries = list(got.message.choices[0].logprobs.content)
    assert len(entries) == 5
    # claude was skipped: never called, not failed, its breaker not charged
    assert st.calls_since_reset("claude_then_gpt") == {"claude": (0, 0), "gpt": (1, 0)}
    assert st.router_metrics("claude_then_gpt")["claude"]["circuit_breaker_state"] == "closed"
    [record] = st.records(got.request_id)
    assert record.provider == "gpt"


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_caller_server_tool_skips_gpt_and_claude_serves(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    got = await call_anthropic(
        st.url,
        kind,
        stream,
        model="gpt_then_claude",
        max_tokens=20,
        messages=HELLO,
        tools=[server_tool],
        container="container_abc",
    )
    assert got.status == 200, got.body
    assert got.error is None
    assert got.headers["x-greenlang-provider"] == "claude_tail"
    [entry] = st.upstream()
    assert entry["path"] == "/v1/messages"
    assert entry["body"]["tools"] == [server_tool]
    assert entry["body"]["container"] == "container_abc"
    assert st.calls_since_reset("gpt_then_claude") == {"gpt_lead": (0, 0), "claude_tail": (1, 0)}
    assert st.router_metrics("gpt_then_claude")["gpt_lead"]["circuit_breaker_state"] == "closed"


async def test_many_skips_never_open_a_breaker(st: ThreadStack) -> None:
    for _ in range(8):  # more than the breaker threshold
        got = await call_openai(
            st.url,
            "async",
            False,
            model="claude_then_gpt",
            max_completion_tokens=3,
            messages=HELLO,
            logprobs=True,
        )
        assert got.headers["x-greenlang-provider"] == "gpt"
    st.reset()
    got = await call_openai(
        st.url, "async", False, model="claude_then_gpt", max_completion_tokens=3, messages=HELLO
    )
    assert got.headers["x-greenlang-provider"] == "claude"  # still the first choice for what it can serve
    assert st.router_metrics("claude_then_gpt")["claude"]["circuit_breaker_state"] == "closed"


# ---------------------------------------------------------------- drop_params = false


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
@pytest.mark.parametrize(("name", "fields"), OPENAI_HINTS[:4], ids=[n for n, _ in OPENAI_HINTS[:4]])
async def test_drop_params_false_turns_an_openai_hint_into_a_400(
    st: ThreadStack, name: str, fields: dict[str, Any], stream: bool
) -> None:
    got = await call_openai(
        st.url, "async", stream, model="strict_claude", max_completion_tokens=20, messages=HELLO, **fields
    )
    assert_refused(st, got, name, ["claude"], "strict_claude")
    assert "drop_params" in str(got.body)


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
async def test_drop_params_false_turns_an_anthropic_hint_into_a_400(st: ThreadStack, stream: bool) -> None:
    got = await call_anthropic(
        st.url, "async", stream, model="strict_gpt", max_tokens=20, messages=HELLO, extra_body={"top_k": 3}
    )
    assert_refused(st, got, "top_k", ["gpt"], "strict_gpt")


@pytest.mark.parametrize("stream", STREAMS, ids=_stream_id)
async def test_drop_params_false_still_serves_what_needs_no_drop(st: ThreadStack, stream: bool) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    got = await call_openai(
        st.url,
        "async",
        stream,
        model="strict_claude",
        max_completion_tokens=20,
        messages=[{"role": "user", "content": "get_time now"}],
        tools=tools,
        user="u",
    )
    assert got.status == 200
    assert got.dropped == []
    assert [c.function.name for c in got.message.choices[0].message.tool_calls] == ["get_time"]
