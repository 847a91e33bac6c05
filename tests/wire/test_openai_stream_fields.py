"""wire.openai beyond text, replies: parse_response / StreamParser (streamed == plain) and
render_response / StreamWriter, checked against the official SDK's own types and accumulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from greenlang_llm._types import GenerationRequest, TokenUsage
from greenlang_llm.content import Delta, WireOrigin
from greenlang_llm.wire import openai as wire
from greenlang_llm.wire._common import ParsedResponse
from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
HEAD = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
CALLS = [
    {
        "type": "tool_call",
        "id": "call_Qm4sVz8kR1tXb7Lw2yNcE5Ha",
        "name": "get_weather",
        "arguments": '{"city":"Paris","unit":"c"}',
    },
    {
        "type": "tool_call",
        "id": "call_Hn7pWc3jT9dKs2Gv6xRbL0Ye",
        "name": "get_weather",
        "arguments": '{"city":"Tokyo","unit":"c"}',
    },
]
LOGPROBS = [
    {"token": t, "logprob": -0.5, "bytes": list(t.encode()), "top_logprobs": []} for t in ("Hi", " there")
]


def events(raw: bytes, chunk: int = 0) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    if not chunk:
        return [*decoder.feed(raw), *decoder.flush()]
    out: list[ServerSentEvent] = []
    for i in range(0, len(raw), chunk):
        out.extend(decoder.feed(raw[i : i + chunk]))
    return [*out, *decoder.flush()]


def run(evs: list[ServerSentEvent], **kw: Any) -> tuple[ParsedResponse, list[str | list[Delta]]]:
    parser = wire.StreamParser(provider="openai", **kw)
    fed = [d for ev in evs if (d := parser.feed(ev)) is not None]
    return parser.finish(), fed


def flat(fed: list[str | list[Delta]]) -> list[Delta]:
    return [d for item in fed if isinstance(item, list) for d in item]


def sse(*chunks: dict[str, Any], usage: dict[str, Any] | None = None) -> bytes:
    frames = [b"data: " + orjson.dumps({**HEAD, **c}) + b"\n\n" for c in chunks]
    if usage is not None:
        frames.append(b"data: " + orjson.dumps({**HEAD, "choices": [], "usage": usage}) + b"\n\n")
    return b"".join(frames) + b"data: [DONE]\n\n"


def choice(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}


def plain(message: dict[str, Any], finish: str = "stop", logprobs: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        ],
    }


def same(a: ParsedResponse, b: ParsedResponse) -> None:
    assert (a.text, a.content, a.refusal, a.logprobs, a.finish_reason) == (
        b.text,
        b.content,
        b.refusal,
        b.logprobs,
        b.finish_reason,
    )


# ---------------------------------------------------------------- the tool-call fixtures


def test_tool_call_fixtures_are_what_the_sdk_parses() -> None:
    body = orjson.loads((FIXTURES / "chat_response_tool_calls.json").read_bytes())
    completion = ChatCompletion.model_validate(body)
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for ev in events((FIXTURES / "chat_stream_tool_calls.sse").read_bytes()):
        if ev.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate(orjson.loads(ev.data)))
    streamed = state.get_final_completion().choices[0].message.tool_calls or []
    expected = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed] == [  # type: ignore[union-attr]
        (c.id, c.function.name, c.function.arguments) for c in expected
    ]  # type: ignore[union-attr]


@pytest.mark.parametrize("split", [0, 1, 29, 512])
def test_tool_calls_plain_and_streamed_give_the_same_content(split: int) -> None:
    body = orjson.loads((FIXTURES / "chat_response_tool_calls.json").read_bytes())
    parsed = wire.parse_response(body)
    assert parsed.content == CALLS
    assert parsed.text == ""
    assert parsed.finish_reason == "tool_calls"
    final, _fed = run(events((FIXTURES / "chat_stream_tool_calls.sse").read_bytes(), split))
    same(final, parsed)
    assert final.usage == parsed.usage == TokenUsage(112, 52, 164)


def test_tool_call_deltas_open_each_call_then_carry_its_arguments() -> None:
    _, fed = run(events((FIXTURES / "chat_stream_tool_calls.sse").read_bytes()))
    assert all(isinstance(item, list) for item in fed)
    deltas = flat(fed)
    assert deltas[0] == Delta("tool_call", 0, id=CALLS[0]["id"], name="get_weather")
    opened = [d for d in deltas if d.kind == "tool_call"]
    assert [(d.index, d.id) for d in opened] == [(0, CALLS[0]["id"]), (1, CALLS[1]["id"])]
    for index, call in enumerate(CALLS):
        pieces = [d.text for d in deltas if d.kind == "tool_arguments" and d.index == index]
        assert "".join(pieces) == call["arguments"]


def test_a_call_whose_first_chunk_carries_arguments_gives_both_deltas_and_text_keeps_its_own_index() -> None:
    raw = sse(
        choice({"role": "assistant", "content": "Let me check."}),
        choice(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ]
            }
        ),
        choice({}, "tool_calls"),
    )
    final, fed = run(events(raw))
    assert fed[0] == "Let me check."
    assert fed[1] == [Delta("tool_call", 1, id="c1", name="f"), Delta("tool_arguments", 1, '{"a":1}')]
    assert final.content == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_call", "id": "c1", "name": "f", "arguments": '{"a":1}'},
    ]
    same(
        final,
        wire.parse_response(
            plain(
                {
                    "content": "Let me check.",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                    ],
                },
                "tool_calls",
            )
        ),
    )


# ---------------------------------------------------------------- reasoning, refusal, logprobs, meta


def test_reasoning_content_is_a_thinking_block_first_plain_and_streamed() -> None:
    raw = sse(
        choice({"role": "assistant", "content": "", "reasoning_content": "Think"}),
        choice({"reasoning_content": "ing."}),
        choice({"content": "Yes.", "reasoning_content": None}),
        choice({}, "stop"),
        usage={
            "prompt_tokens": 5,
            "completion_tokens": 9,
            "completion_tokens_details": {"reasoning_tokens": 6},
        },
    )
    final, fed = run(events(raw))
    assert flat(fed)[:2] == [Delta("thinking", 0, "Think"), Delta("thinking", 0, "ing.")]
    assert fed[2] == "Yes."
    parsed = wire.parse_response(
        {
            **plain({"content": "Yes.", "reasoning_content": "Thinking."}),
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": 9,
                "completion_tokens_details": {"reasoning_tokens": 6},
            },
        }
    )
    assert parsed.content == [{"type": "thinking", "text": "Thinking."}, {"type": "text", "text": "Yes."}]
    same(final, parsed)
    assert final.usage is not None
    assert final.usage.reasoning_tokens == 6
    assert parsed.usage is not None
    assert parsed.usage.reasoning_tokens == 6


def test_a_refusal_is_its_own_field_and_finishes_as_content_filter() -> None:
    parsed = wire.parse_response(plain({"content": None, "refusal": "I can't help with that."}))
    assert (parsed.text, parsed.refusal, parsed.content) == ("", "I can't help with that.", None)
    assert parsed.finish_reason == "content_filter"
    assert parsed.native_finish_reason == "stop"
    final, fed = run(
        events(
            sse(
                choice({"role": "assistant", "content": None, "refusal": ""}),
                choice({"refusal": "I can't "}),
                choice({"refusal": "help with that."}),
                choice({}, "stop"),
            )
        )
    )
    assert [d.kind for d in flat(fed)] == ["refusal", "refusal"]
    same(final, parsed)


def test_logprobs_are_joined_like_the_plain_reply() -> None:
    parsed = wire.parse_response(
        plain({"content": "Hi there"}, logprobs={"content": LOGPROBS, "refusal": None})
    )
    assert parsed.logprobs == {"content": LOGPROBS, "refusal": None}
    final, fed = run(
        events(
            sse(
                choice({"role": "assistant", "content": ""}, logprobs={"content": [], "refusal": None}),
                choice({"content": "Hi"}, logprobs={"content": LOGPROBS[:1], "refusal": None}),
                choice({"content": " there"}, logprobs={"content": LOGPROBS[1:], "refusal": None}),
                choice({}, "stop"),
            )
        )
    )
    assert fed[0] == [
        Delta("text", 0, "Hi"),
        Delta("logprobs", 0, value={"content": LOGPROBS[:1], "refusal": None}),
    ]
    same(final, parsed)


def test_meta_is_given_once_and_only_to_a_caller_of_this_api() -> None:
    raw = (FIXTURES / "chat_stream_include_usage.sse").read_bytes()
    same_api = GenerationRequest(prompt="x", origin=WireOrigin("openai", {}))
    _, fed = run(events(raw), request=same_api)
    metas = [d for d in flat(fed) if d.kind == "meta"]
    assert metas == [
        Delta("meta", 0, value={"system_fingerprint": "fp_bbba54d498", "service_tier": "default"})
    ]
    # it travels with the first content, never alone (a chunk of meta would be the first byte)
    first = next(item for item in fed if item)
    assert isinstance(first, list)
    assert [d.kind for d in first] == ["meta", "text"]
    assert first[1].text == "It"
    _, fed = run(events(raw), request=GenerationRequest(prompt="x", origin=WireOrigin("anthropic", {})))
    assert all(isinstance(item, str) for item in fed)


def test_plain_text_replies_have_no_content_and_text_chunks_stay_strings() -> None:
    parsed = wire.parse_response(orjson.loads((FIXTURES / "chat_response.json").read_bytes()))
    assert (parsed.content, parsed.refusal, parsed.logprobs) == (None, None, None)
    final, fed = run(events((FIXTURES / "chat_stream_include_usage.sse").read_bytes()))
    assert all(isinstance(item, str) for item in fed)
    assert final.content is None


# ---------------------------------------------------------------- render_response


def test_rendered_tool_call_reply_is_an_sdk_chat_completion_and_parses_back() -> None:
    content = [
        {"type": "thinking", "text": "Two cities.", "signature": "s"},
        {"type": "redacted_thinking", "data": "xx"},
        *CALLS,
    ]
    usage = TokenUsage(112, 52, 164, reasoning_tokens=20)
    body = wire.render_response(
        id="chatcmpl-1",
        model="m",
        text="",
        finish_reason="tool_calls",
        usage=usage,
        created=1,
        content=content,
    )
    completion = ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert message.content is None
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.id for c in message.tool_calls or []] == [CALLS[0]["id"], CALLS[1]["id"]]
    assert body["choices"][0]["message"]["reasoning_content"] == "Two cities."
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 20
    back = wire.parse_response(body)
    assert back.content == [{"type": "thinking", "text": "Two cities."}, *CALLS]
    assert back.usage == usage


def test_rendered_refusal_and_logprobs_are_sdk_valid() -> None:
    lp = {"content": LOGPROBS, "refusal": None}
    body = wire.render_response(
        id="c",
        model="m",
        text="",
        finish_reason="content_filter",
        usage=TokenUsage(1, 1, 2),
        created=1,
        refusal="No.",
        logprobs=lp,
    )
    completion = ChatCompletion.model_validate(body)
    assert completion.choices[0].message.refusal == "No."
    assert completion.choices[0].message.content is None
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].logprobs is not None
    back = wire.parse_response(body)
    assert (back.refusal, back.logprobs, back.finish_reason) == ("No.", lp, "content_filter")


def test_rendered_text_and_tool_call_reply_keeps_the_text() -> None:
    body = wire.render_response(
        id="c",
        model="m",
        text="ignored",
        finish_reason=None,
        usage=TokenUsage(1, 1, 2),
        created=1,
        content=[{"type": "text", "text": "On it."}, CALLS[0]],
    )
    message = body["choices"][0]["message"]
    assert message["content"] == "On it."
    assert list(message) == ["role", "content", "tool_calls", "refusal", "annotations"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


# ---------------------------------------------------------------- StreamWriter.deltas


def written(items: list[Delta], include_usage: bool = True, meta: bool = False) -> bytes:
    writer = wire.StreamWriter("chatcmpl-w", "m", 1, include_usage)
    return (
        writer.start()
        + writer.deltas(items)
        + writer.finish("tool_calls", TokenUsage(10, 5, 15, reasoning_tokens=2))
    )


def sdk_final(raw: bytes) -> Any:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for ev in events(raw):
        if ev.data != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate(orjson.loads(ev.data)))
    return state.get_final_completion()


RICH = [
    Delta("thinking", 0, "Two "),
    Delta("thinking", 0, "cities."),
    Delta("signature", 0, "sig"),
    Delta("text", 1, "Checking."),
    Delta("tool_call", 2, id=CALLS[0]["id"], name="get_weather"),
    Delta("tool_arguments", 2, '{"city":"Paris",'),
    Delta("tool_arguments", 2, '"unit":"c"}'),
    Delta("redacted_thinking", 3, "zz"),
    Delta("tool_call", 4, id=CALLS[1]["id"], name="get_weather"),
    Delta("tool_arguments", 4, CALLS[1]["arguments"]),
]


def test_writer_frames_are_sdk_chunks_that_accumulate_to_the_answer() -> None:
    raw = written(RICH)
    final = sdk_final(raw).choices[0]
    assert final.message.content == "Checking."
    assert [(c.id, c.function.arguments) for c in final.message.tool_calls] == [
        (CALLS[0]["id"], CALLS[0]["arguments"]),
        (CALLS[1]["id"], CALLS[1]["arguments"]),
    ]
    assert final.finish_reason == "tool_calls"
    indexes = [
        c["index"]
        for ev in events(raw)
        if ev.data != "[DONE]"
        for ch in orjson.loads(ev.data)["choices"]
        for c in ch["delta"].get("tool_calls", [])
    ]
    assert indexes == [0, 0, 0, 1, 1]  # ordinals, whatever the neutral indexes


def test_writer_to_parser_gives_the_same_content() -> None:
    final, fed = run(events(written(RICH)))
    assert final.text == "Checking."
    assert final.content == [
        {"type": "thinking", "text": "Two cities."},
        {"type": "text", "text": "Checking."},
        *CALLS,
    ]
    assert final.usage is not None
    assert final.usage.reasoning_tokens == 2
    kinds = [d.kind for d in flat(fed)]
    assert "signature" not in kinds
    assert "redacted_thinking" not in kinds


def test_fixture_stream_through_parser_writer_parser_is_unchanged() -> None:
    first, fed = run(events((FIXTURES / "chat_stream_tool_calls.sse").read_bytes()))
    writer = wire.StreamWriter("c", "m", 1, True)
    raw = writer.start()
    for item in fed:
        raw += writer.delta(item) if isinstance(item, str) else writer.deltas(item)
    raw += writer.finish(first.finish_reason, first.usage or TokenUsage(0, 0, 0))
    second, _ = run(events(raw))
    same(second, first)


def test_writer_attaches_logprobs_to_their_text_and_refusals_have_their_field() -> None:
    lp = {"content": LOGPROBS, "refusal": None}
    raw = written([Delta("text", 0, "Hi there"), Delta("logprobs", 0, value=lp), Delta("refusal", 0, "No.")])
    chunks = [orjson.loads(ev.data) for ev in events(raw) if ev.data != "[DONE]"]
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi there"}
    assert chunks[1]["choices"][0]["logprobs"] == lp
    assert chunks[2]["choices"][0]["delta"] == {"refusal": "No."}
    final, _ = run(events(raw))
    assert (final.text, final.refusal, final.logprobs) == ("Hi there", "No.", lp)


def test_meta_updates_the_head_of_later_chunks_and_writes_nothing_itself() -> None:
    writer = wire.StreamWriter("c", "m", 1, False)
    assert (
        writer.deltas([Delta("meta", 0, value={"system_fingerprint": "fp_1", "service_tier": "flex"})]) == b""
    )
    assert writer.deltas([Delta("signature", 0, "s"), Delta("redacted_thinking", 1, "d")]) == b""
    chunk = orjson.loads(events(writer.delta("x"))[0].data)
    assert (chunk["system_fingerprint"], chunk["service_tier"]) == ("fp_1", "flex")


def test_a_same_api_stream_is_relayed_with_its_metadata() -> None:
    raw = (FIXTURES / "chat_stream_include_usage.sse").read_bytes()
    first, fed = run(events(raw), request=GenerationRequest(prompt="x", origin=WireOrigin("openai", {})))
    writer = wire.StreamWriter("c", "m", 1, True, service_tier=None)
    out = writer.start()
    for item in fed:
        out += writer.delta(item) if isinstance(item, str) else writer.deltas(item)
    out += writer.finish(first.finish_reason, first.usage or TokenUsage(0, 0, 0))
    last = orjson.loads(events(out)[-2].data)
    assert (last["system_fingerprint"], last["service_tier"]) == ("fp_bbba54d498", "default")
    assert run(events(out))[0].text == first.text


def test_a_second_opening_of_the_same_neutral_index_is_a_new_call() -> None:
    writer = wire.StreamWriter("c", "m", 1, False)
    raw = writer.deltas(
        [
            Delta("tool_call", 0, id="a", name="f"),
            Delta("tool_arguments", 0, "{}"),
            Delta("tool_call", 0, id="b", name="f"),
            Delta("tool_arguments", 0, "{}"),
        ]
    )
    indexes = [orjson.loads(ev.data)["choices"][0]["delta"]["tool_calls"][0]["index"] for ev in events(raw)]
    assert indexes == [0, 0, 1, 1]


def test_usage_to_wire_carries_reasoning_tokens() -> None:
    usage = TokenUsage(10, 8, 18, reasoning_tokens=5)
    assert wire.usage_to_wire(usage)["completion_tokens_details"]["reasoning_tokens"] == 5
    assert wire.usage_from_wire(wire.usage_to_wire(usage)) == usage


def test_a_refusal_keeps_its_stop_for_a_caller_of_this_api() -> None:
    same_api = GenerationRequest(prompt="x", origin=WireOrigin("openai", {}))
    parsed = wire.parse_response(plain({"content": None, "refusal": "No."}), same_api)
    assert (parsed.refusal, parsed.finish_reason) == ("No.", "stop")
    final, _ = run(events(sse(choice({"refusal": "No."}), choice({}, "stop"))), request=same_api)
    same(final, parsed)


def test_delta_fields_the_neutral_stream_does_not_know_reach_a_same_api_caller_only() -> None:
    audio = {"id": "audio_1", "data": "UklGR", "transcript": "Hi"}
    raw = sse(
        choice({"role": "assistant", "content": None, "audio": audio}),
        choice({"annotations": [{"type": "url_citation"}]}),
        choice({}, "stop"),
    )
    same_api = GenerationRequest(prompt="x", origin=WireOrigin("openai", {}))
    _, fed = run(events(raw), request=same_api)
    relayed = [d.value for d in flat(fed) if d.kind == "fields"]
    assert relayed == [{"audio": audio}, {"annotations": [{"type": "url_citation"}]}]
    writer = wire.StreamWriter("chatcmpl-1", "gpt-4o-audio", 1, False)
    frames = writer.deltas(flat(fed))
    assert b'"delta":{"audio":{"id":"audio_1"' in frames
    assert b'"delta":{"annotations":[{"type":"url_citation"}]}' in frames
    _, fed = run(events(raw), request=GenerationRequest(prompt="x", origin=WireOrigin("anthropic", {})))
    assert not [d for d in flat(fed) if d.kind == "fields"]  # nobody else could read them
