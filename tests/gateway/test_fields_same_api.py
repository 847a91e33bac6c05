"""Same API (docs/fields.md, first paragraph): an OpenAI caller served by an ``openai`` provider and
an Anthropic caller by an ``anthropic`` provider get their body sent upstream as it came — every
field, unknown ones included, only ``model`` rewritten (and ``stream_options.include_usage`` for
an OpenAI stream) — and every field of the answer back: tool calls, thinking blocks with their
signatures, logprobs, ``n`` choices, ``system_fingerprint``, a refusal, unknown reply fields.

Official SDKs (sync and async clients, plain and streamed) → gateway → simulator; the upstream's
side is the simulator's request log, the ground truth of an answer is the same request sent to
the simulator directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from fields_support import (
    CLAUDE,
    FIXED_CLAUDE,
    FIXED_GPT,
    GPT,
    MODES,
    Capture,
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

OPENAI_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]
ANTHROPIC_TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}},
]


@pytest.fixture(scope="module")
def st() -> Iterator[ThreadStack]:
    with ThreadStack() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(st: ThreadStack) -> None:
    st.reset()


def _direct_openai(st: ThreadStack, **kw: Any) -> dict[str, Any]:
    """The simulator's own plain answer to ``kw`` (the ground truth of a pass-through)."""
    with openai.OpenAI(base_url=st.sim.openai_base_url, api_key=SIM_KEY, max_retries=0) as c:
        raw = c.chat.completions.with_raw_response.create(**kw)
    body: dict[str, Any] = orjson.loads(raw.content)
    return body


def _direct_openai_stream(st: ThreadStack, **kw: Any) -> list[Any]:
    with openai.OpenAI(base_url=st.sim.openai_base_url, api_key=SIM_KEY, max_retries=0) as c:
        return list(c.chat.completions.create(stream=True, **kw))


def _direct_anthropic(st: ThreadStack, **kw: Any) -> dict[str, Any]:
    with anthropic.Anthropic(base_url=st.sim.anthropic_base_url, api_key=SIM_KEY, max_retries=0) as c:
        raw = c.messages.with_raw_response.create(**kw)
    body: dict[str, Any] = orjson.loads(raw.read())
    return body


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


# ---------------------------------------------------------------- OpenAI caller → openai provider


def _openai_everything() -> dict[str, Any]:
    """A request using nearly every Chat Completions field, an earlier tool turn and an unknown field."""
    return {
        "model": "to_gpt",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "Look at these"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_earlier1",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":"UTC"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_earlier1", "content": "noon"},
            {"role": "user", "content": "And the get_weather in Paris?"},
        ],
        "tools": OPENAI_TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "user": "user-1",
        "stop": ["zzz"],
        "max_completion_tokens": 300,
        "metadata": {"team": "a"},
        "store": False,
        "reasoning_effort": "low",
        "service_tier": "default",
        "extra_body": {"x_custom_field": {"a": 1}},
    }


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_request_reaches_the_openai_upstream_unchanged_but_model(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    capture = Capture()
    got = await call_openai(st.url, kind, stream, capture, **_openai_everything())
    assert got.status == 200, got.body
    assert got.headers["x-greenlang-provider"] == "gpt"
    assert "x-greenlang-dropped-params" not in got.headers
    [sent] = capture.bodies
    assert sent["x_custom_field"] == {"a": 1}
    [entry] = st.upstream()
    assert entry["path"] == "/v1/chat/completions"
    expected = {**sent, "model": GPT, "stream": stream}
    if stream:
        expected["stream_options"] = {"include_usage": True}
    assert entry["body"] == expected
    # (and the whole upstream body is the caller's, in the caller's key order: nothing re-encoded)
    assert list(entry["body"])[: len(sent)] == list(sent)


async def test_openai_stream_options_are_kept_and_include_usage_added(st: ThreadStack) -> None:
    capture = Capture()
    got = await call_openai(
        st.url,
        "async",
        True,
        capture,
        model="to_gpt",
        max_completion_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_obfuscation": False},
        extra_body={"x_custom_field": 1},
    )
    assert got.status == 200
    assert st.last_body()["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    # the caller did not ask for the usage chunk: it does not get one
    assert all(chunk.usage is None for chunk in got.events)
    assert got.message.choices[0].message.content


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_tool_calls_and_logprobs_reach_the_caller_as_the_upstream_sent_them(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Call get_weather and get_time please"}],
        "tools": OPENAI_TOOLS,
        "max_completion_tokens": 200,
        "logprobs": True,
        "extra_body": {"x_custom_field": {"a": 1}},
    }
    direct = _direct_openai(st, model=GPT, **request)
    calls = direct["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]  # (the simulator's rule)
    st.reset()
    got = await call_openai(
        st.url,
        kind,
        stream,
        model="to_gpt",
        stream_options={"include_usage": True} if stream else openai.omit,
        **request,
    )
    assert got.status == 200
    if not stream:
        assert got.body is not None
        assert got.body["id"] != direct["id"]  # the gateway's own id...
        assert _without(got.body, "id", "created") == _without(direct, "id", "created")  # ...and all else
        return
    final = got.message.choices[0]
    assert final.finish_reason == "tool_calls"
    assert [
        (c.id, c.function.name, orjson.loads(c.function.arguments)) for c in final.message.tool_calls
    ] == [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls]
    usage = [c.usage for c in got.events if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].prompt_tokens == direct["usage"]["prompt_tokens"]
    assert usage[0].completion_tokens == direct["usage"]["completion_tokens"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_openai_logprobs_of_a_text_answer_reach_the_caller_plain_and_streamed(
    st: ThreadStack, kind: str
) -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Say something"}],
        "max_completion_tokens": 6,
        "logprobs": True,
        "top_logprobs": 0,
    }
    direct = _direct_openai(st, model=GPT, **request)
    entries = direct["choices"][0]["logprobs"]["content"]
    assert len(entries) == 6
    direct_chunks = _direct_openai_stream(st, model=GPT, **request)
    st.reset()
    plain = await call_openai(st.url, kind, False, model="to_gpt", **request)
    assert plain.body is not None
    assert plain.body["choices"] == direct["choices"]
    streamed = await call_openai(st.url, kind, True, model="to_gpt", **request)
    got_entries = [
        e.model_dump()
        for chunk in streamed.events
        for choice in chunk.choices
        if choice.logprobs is not None and choice.logprobs.content
        for e in choice.logprobs.content
    ]
    assert got_entries == entries
    text = "".join(c.choices[0].delta.content or "" for c in streamed.events if c.choices)
    assert text == direct["choices"][0]["message"]["content"]
    assert len(st.upstream()) == 2
    want = "".join(c.choices[0].delta.content or "" for c in direct_chunks if c.choices)
    assert text == want


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_openai_n_2_gives_two_choices_plain(st: ThreadStack, kind: str) -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Two answers"}],
        "n": 2,
        "max_completion_tokens": 5,
        "extra_body": {"x_custom_field": True},
    }
    direct = _direct_openai(st, model=GPT, **request)
    assert len(direct["choices"]) == 2
    st.reset()
    got = await call_openai(st.url, kind, False, model="to_gpt", **request)
    assert got.status == 200
    assert got.body is not None
    assert [c["index"] for c in got.body["choices"]] == [0, 1]
    assert got.body["choices"] == direct["choices"]
    assert got.body["usage"] == direct["usage"]
    assert got.message.choices[0].message.content != got.message.choices[1].message.content
    assert st.last_body()["n"] == 2
    # the ledger bills both answers: the usage the upstream reported, once
    [record] = st.records(got.request_id)
    assert record.output_tokens == direct["usage"]["completion_tokens"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_openai_n_2_with_stream_is_a_400_naming_n_without_an_upstream_call(
    st: ThreadStack, kind: str
) -> None:
    got = await call_openai(
        st.url,
        kind,
        True,
        model="to_gpt",
        n=2,
        max_completion_tokens=5,
        messages=[{"role": "user", "content": "Two answers"}],
    )
    assert got.status == 400
    assert isinstance(got.error, openai.BadRequestError)
    assert got.body is not None
    assert got.body["error"]["param"] == "n"
    assert "n" in got.body["error"]["message"]
    assert st.upstream() == []


# ---------------------------------------------------------------- fields the simulator never sends


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": FIXED_GPT,
        "system_fingerprint": "fp_up_123",
        "service_tier": "default",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


REFUSAL_BODY: dict[str, Any] = {
    "id": "chatcmpl-up",
    "object": "chat.completion",
    "created": 1,
    "model": FIXED_GPT,
    "system_fingerprint": "fp_up_123",
    "service_tier": "default",
    "x_upstream_only": {"kept": True},
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": "I can't help with that.",
                "annotations": [],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 6,
        "total_tokens": 15,
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
REFUSAL_STREAM = openai_sse(
    _chunk({"role": "assistant", "content": None, "refusal": ""}, obfuscation="abc"),
    _chunk({"refusal": "I can't "}, obfuscation="de"),
    _chunk({"refusal": "help with that."}),
    _chunk({}, "stop"),
    {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": FIXED_GPT,
        "system_fingerprint": "fp_up_123",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    },
)


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_openai_refusal_system_fingerprint_and_unknown_reply_fields_reach_the_caller(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    st.scripted.plain["/v1/chat/completions"] = REFUSAL_BODY
    st.scripted.stream["/v1/chat/completions"] = REFUSAL_STREAM
    got = await call_openai(
        st.url,
        kind,
        stream,
        model="to_fixed_gpt",
        max_completion_tokens=50,
        messages=[{"role": "user", "content": "something bad"}],
        extra_body={"x_custom_field": 1},
    )
    assert got.status == 200
    assert [s["body"]["x_custom_field"] for s in st.scripted.seen] == [1]
    if not stream:
        assert got.body is not None
        assert _without(got.body, "id") == _without(REFUSAL_BODY, "id")  # every field, unknown ones too
        assert got.message.choices[0].message.refusal == "I can't help with that."
        return
    assert {c.system_fingerprint for c in got.events} == {"fp_up_123"}
    refusal = "".join(c.choices[0].delta.refusal or "" for c in got.events if c.choices)
    assert refusal == "I can't help with that."
    assert got.message.choices[0].message.refusal == "I can't help with that."
    # the finish reason the upstream sent, as in the plain reply (streamed == plain)
    assert got.message.choices[0].finish_reason == "stop"
    assert all("obfuscation" not in (c.model_extra or {}) for c in got.events)  # not relayed (docs)


ANTHROPIC_REFUSAL: dict[str, Any] = {
    "id": "msg_up",
    "type": "message",
    "role": "assistant",
    "model": FIXED_CLAUDE,
    "content": [{"type": "text", "text": "I won't."}],
    "stop_reason": "refusal",
    "stop_sequence": None,
    "x_upstream_only": [1, 2],
    "usage": {
        "input_tokens": 9,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}
ANTHROPIC_REFUSAL_STREAM = anthropic_sse(
    {
        "type": "message_start",
        "message": {
            **ANTHROPIC_REFUSAL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 9, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I won't."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "refusal", "stop_sequence": None},
        "usage": {"output_tokens": 3},
    },
    {"type": "message_stop"},
)


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_refusal_and_unknown_reply_fields_reach_the_caller(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    st.scripted.plain["/v1/messages"] = ANTHROPIC_REFUSAL
    st.scripted.stream["/v1/messages"] = ANTHROPIC_REFUSAL_STREAM
    got = await call_anthropic(
        st.url,
        kind,
        stream,
        model="to_fixed_claude",
        max_tokens=50,
        messages=[{"role": "user", "content": "something bad"}],
        extra_body={"x_custom_field": 1},
    )
    assert got.status == 200
    assert [s["body"]["x_custom_field"] for s in st.scripted.seen] == [1]
    if not stream:
        assert got.body is not None
        assert _without(got.body, "id") == _without(ANTHROPIC_REFUSAL, "id")
        return
    assert got.message.stop_reason == "refusal"
    assert [b.text for b in got.message.content] == ["I won't."]
    assert got.message.usage.output_tokens == 3


# ---------------------------------------------------------------- Anthropic caller → anthropic provider


def _anthropic_everything() -> dict[str, Any]:
    return {
        "model": "to_claude",
        "max_tokens": 3000,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "spec.pdf",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "The user wants the time.", "signature": "c2lnbmF0dXJl"},
                    {"type": "tool_use", "id": "toolu_earlier1", "name": "get_time", "input": {"tz": "UTC"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_earlier1", "content": "noon"},
                    {"type": "text", "text": "And get_weather in Paris?"},
                ],
            },
        ],
        "tools": ANTHROPIC_TOOLS,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stop_sequences": ["zzz"],
        "metadata": {"user_id": "user-1"},
        "service_tier": "auto",
        "inference_geo": "us",
        # (the anthropic 2.x SDK has no temperature / top_p / top_k arguments: sent as extra fields)
        "extra_body": {"x_custom_field": {"a": 1}, "temperature": 1, "top_p": 0.99, "top_k": 5},
    }


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_request_reaches_the_anthropic_upstream_unchanged_but_model(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    capture = Capture()
    got = await call_anthropic(st.url, kind, stream, capture, **_anthropic_everything())
    assert got.status == 200, got.body
    assert got.headers["x-greenlang-provider"] == "claude"
    assert "x-greenlang-dropped-params" not in got.headers
    [sent] = capture.bodies
    [entry] = st.upstream()
    assert entry["path"] == "/v1/messages"
    assert entry["body"] == {**sent, "model": CLAUDE, "stream": stream}


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_anthropic_thinking_with_signature_and_tool_use_reach_the_caller(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    request: dict[str, Any] = {
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "Use get_weather and get_time"}],
        "tools": ANTHROPIC_TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "extra_body": {"x_custom_field": 1},
    }
    direct = _direct_anthropic(st, model=CLAUDE, **request)
    kinds = [b["type"] for b in direct["content"]]
    assert kinds == ["thinking", "tool_use", "tool_use"]  # (the simulator's rule)
    assert direct["content"][0]["signature"]
    st.reset()
    got = await call_anthropic(st.url, kind, stream, model="to_claude", **request)
    assert got.status == 200
    if not stream:
        assert got.body is not None
        assert _without(got.body, "id") == _without(direct, "id")
        return
    final = got.message.model_dump(exclude_none=True)
    assert [
        {k: v for k, v in b.items() if k in ("type", "thinking", "signature", "id", "name", "input")}
        for b in final["content"]
    ] == direct["content"]
    assert got.message.stop_reason == "tool_use"
    assert got.message.usage.output_tokens == direct["usage"]["output_tokens"]
    assert got.message.usage.input_tokens == direct["usage"]["input_tokens"]
    deltas = [e.delta.type for e in got.events if e.type == "content_block_delta"]
    assert "signature_delta" in deltas
    assert "input_json_delta" in deltas


@pytest.mark.parametrize(("kind", "stream"), MODES, ids=mode_id)
async def test_the_stop_sequence_that_ended_a_claude_answer_reaches_the_caller(
    st: ThreadStack, kind: str, stream: bool
) -> None:
    request: dict[str, Any] = {"max_tokens": 50, "messages": [{"role": "user", "content": "Say many words"}]}
    words = _direct_anthropic(st, model=CLAUDE, **request)["content"][0]["text"].split()
    stop = words[3]
    st.reset()
    got = await call_anthropic(st.url, kind, stream, model="to_claude", stop_sequences=[stop], **request)
    assert got.status == 200
    assert got.message.stop_reason == "stop_sequence"
    assert got.message.stop_sequence == stop
    assert got.message.content[0].text == " ".join(words[:3])
