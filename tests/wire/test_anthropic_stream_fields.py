"""greenlang_llm.wire.anthropic, answers beyond text: parse_response and StreamParser on tool-use
and thinking replies (streamed == plain), render_response and StreamWriter checked by the
official SDK's own types and stream accumulation, and writer → parser round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from greenlang_llm._types import GenerationRequest, TokenUsage
from greenlang_llm.content import Delta
from greenlang_llm.wire import anthropic as wire
from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
EVENT = TypeAdapter(RawMessageStreamEvent)
USAGE = TokenUsage(100, 40, 140, reasoning_tokens=25)


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def events(raw: bytes, chunk: int = 0) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    if not chunk:
        return [*decoder.feed(raw), *decoder.flush()]
    out: list[ServerSentEvent] = []
    for i in range(0, len(raw), chunk):
        out.extend(decoder.feed(raw[i : i + chunk]))
    return [*out, *decoder.flush()]


def run(
    raw: bytes, chunk: int = 0, request: GenerationRequest | None = None
) -> tuple[wire.StreamParser, list[Any]]:
    parser = wire.StreamParser("anthropic", request=request)
    return parser, [out for ev in events(raw, chunk) if (out := parser.feed(ev)) is not None]


def sdk_stream(raw: bytes) -> dict[str, Any]:
    """The message the official SDK accumulates from these frames, every event validated by its types."""
    snapshot = None
    buffers: dict[int, bytes] = {}
    for ev in events(raw):
        data = orjson.loads(ev.data)
        assert data["type"] == ev.event
        if ev.event == "ping":
            continue
        snapshot = accumulate_event(
            event=EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=buffers
        )
    assert snapshot is not None
    return snapshot.model_dump(exclude_none=True)


def sdk_plain(body: dict[str, Any]) -> dict[str, Any]:
    return Message.model_validate(orjson.loads(orjson.dumps(body))).model_dump(exclude_none=True)


TOOL_CONTENT = [
    {"type": "text", "text": "I'll check the weather in both cities."},
    {
        "type": "tool_call",
        "id": "toolu_01A09q90qw90lq917835lq9",
        "name": "get_weather",
        "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
    },
    {
        "type": "tool_call",
        "id": "toolu_01B7xQmR2kfvYp3sD8nWc4Ez",
        "name": "get_weather",
        "arguments": '{"location":"Paris, France","unit":"celsius"}',
    },
]
THINKING = load("messages_thinking_response.json")["content"]
THINKING_CONTENT = [
    {"type": "thinking", "text": THINKING[0]["thinking"], "signature": THINKING[0]["signature"]},
    {"type": "redacted_thinking", "data": THINKING[1]["data"]},
    {"type": "text", "text": THINKING[2]["text"]},
]


# ---------------------------------------------------------------- the fixtures


def test_the_fixtures_are_what_the_sdk_reads_and_streams_match_their_plain_bodies() -> None:
    for name in ("messages_tool_use", "messages_thinking"):
        plain = sdk_plain(load(f"{name}_response.json"))
        assert sdk_stream((FIXTURES / f"{name}_stream.sse").read_bytes()) == plain


def test_a_text_only_reply_has_no_content_blocks() -> None:
    assert wire.parse_response(load("messages_response.json")).content is None
    parser, _ = run((FIXTURES / "messages_stream.sse").read_bytes())
    assert parser.finish().content is None


def test_tool_use_reply_plain() -> None:
    parsed = wire.parse_response(load("messages_tool_use_response.json"))
    assert parsed.content == TOOL_CONTENT
    assert parsed.text == "I'll check the weather in both cities."
    assert parsed.finish_reason == "tool_calls"
    assert parsed.native_finish_reason == "tool_use"
    assert parsed.usage == TokenUsage(412, 118, 530)


@pytest.mark.parametrize("chunk", [0, 1, 17, 300])
def test_tool_use_reply_streamed_equals_plain(chunk: int) -> None:
    parser, outputs = run((FIXTURES / "messages_tool_use_stream.sse").read_bytes(), chunk)
    final = parser.finish()
    plain = wire.parse_response(load("messages_tool_use_response.json"))
    assert final.content == plain.content
    assert final.text == plain.text
    assert final.usage == plain.usage
    assert final.finish_reason == "tool_calls"
    assert outputs[:2] == ["I'll check the weather", " in both cities."]  # text stays a str
    deltas = [d for out in outputs if isinstance(out, list) for d in out]
    assert all(isinstance(out, str | list) for out in outputs)
    assert deltas[0] == Delta("tool_call", 1, id="toolu_01A09q90qw90lq917835lq9", name="get_weather")
    pieces = "".join(d.text for d in deltas if d.kind == "tool_arguments" and d.index == 1)
    assert orjson.loads(pieces) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert next(d.kind for d in deltas if d.index == 2) == "tool_call"


def test_thinking_reply_plain() -> None:
    parsed = wire.parse_response(load("messages_thinking_response.json"))
    assert parsed.content == THINKING_CONTENT
    assert parsed.text == THINKING[2]["text"]
    assert parsed.usage is not None
    assert parsed.usage.reasoning_tokens == 281
    assert parsed.usage.output_tokens == 312


@pytest.mark.parametrize("chunk", [0, 5, 64])
def test_thinking_reply_streamed_equals_plain(chunk: int) -> None:
    parser, outputs = run((FIXTURES / "messages_thinking_stream.sse").read_bytes(), chunk)
    final = parser.finish()
    assert final == wire.parse_response(load("messages_thinking_response.json"))
    kinds = [d.kind for out in outputs if isinstance(out, list) for d in out]
    assert kinds == ["thinking"] * 5 + ["signature", "redacted_thinking"]
    assert [out for out in outputs if isinstance(out, str)] == [
        "The greatest common divisor",
        " of 1071 and 462 is **21**.",
    ]
    opening = outputs[0]
    assert opening == [Delta("thinking", 0, text="")]
    assert outputs[-3] == [Delta("redacted_thinking", 1, text=THINKING[1]["data"])]


def test_text_between_blocks_keeps_its_place() -> None:
    body = {
        "id": "msg_1",
        "model": "m",
        "type": "message",
        "role": "assistant",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
        "content": [
            {"type": "text", "text": "A"},
            {"type": "text", "text": "B"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            {"type": "text", "text": ""},
            {"type": "text", "text": "C"},
        ],
    }
    parsed = wire.parse_response(body)
    assert parsed.content == [
        {"type": "text", "text": "AB"},
        {"type": "tool_call", "id": "t1", "name": "f", "arguments": "{}"},
        {"type": "text", "text": "C"},
    ]
    assert parsed.text == "ABC"
    raw = render_body_as_stream(body)
    parser, _ = run(raw)
    assert parser.finish().content == parsed.content


def render_body_as_stream(body: dict[str, Any]) -> bytes:
    """A plain body as the API would stream it (one delta per block), to check streamed == plain."""
    out = [
        wire._event(
            "message_start",
            {"type": "message_start", "message": {**body, "content": [], "stop_reason": None}},
        )
    ]
    for index, block in enumerate(body["content"]):
        kind = block["type"]
        start = (
            {"type": "text", "text": ""}
            if kind == "text"
            else {**block, "input": {}}
            if "input" in block
            else block
        )
        if kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
        out.append(
            wire._event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
        )
        delta: dict[str, Any] | None = None
        if kind == "text" and block["text"]:
            delta = {"type": "text_delta", "text": block["text"]}
        elif block.get("input"):
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}
        elif kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": block["thinking"]}
        if delta is not None:
            out.append(
                wire._event(
                    "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                )
            )
        if kind == "thinking":
            sig = {"type": "signature_delta", "signature": block["signature"]}
            out.append(
                wire._event(
                    "content_block_delta", {"type": "content_block_delta", "index": index, "delta": sig}
                )
            )
        out.append(wire._event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        wire._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": body.get("stop_sequence")},
                "usage": body["usage"],
            },
        )
    )
    out.append(wire._event("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def test_server_tool_blocks_are_kept_verbatim_plain_and_streamed() -> None:
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [
            {
                "type": "web_search_result",
                "url": "https://e.com",
                "title": "E",
                "encrypted_content": "abc",
                "page_age": None,
            }
        ],
    }
    body = {
        "id": "msg_2",
        "model": "m",
        "type": "message",
        "role": "assistant",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "weather"},
            },
            result,
            {"type": "text", "text": "Sunny."},
        ],
    }
    parsed = wire.parse_response(body)
    assert parsed.content == [body["content"][0], result, {"type": "text", "text": "Sunny."}]
    parser, outputs = run(render_body_as_stream(body))
    assert parser.finish().content == parsed.content
    blocks = [d for out in outputs if isinstance(out, list) for d in out]
    assert [(d.kind, d.index) for d in blocks] == [("block", 0), ("block", 1)]
    assert blocks[0].value == body["content"][0]
    # and an Anthropic writer relays them as the API's blocks
    writer = wire.StreamWriter("msg_2", "m", TokenUsage(5, 9, 14))
    raw = (
        writer.start()
        + writer.deltas(blocks)
        + writer.delta("Sunny.")
        + writer.finish("stop", TokenUsage(5, 9, 14))
    )
    assert sdk_stream(raw)["content"] == sdk_plain(body)["content"]


def test_json_object_answers_come_back_as_text() -> None:
    request = GenerationRequest(prompt="JSON please", response_format={"type": "json_object"})
    body = {
        "id": "msg_3",
        "model": "m",
        "type": "message",
        "role": "assistant",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
        "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "json_object", "input": {"city": "Oslo", "n": 2}}
        ],
    }
    parsed = wire.parse_response(body, request)
    assert parsed.text == '{"city":"Oslo","n":2}'
    assert parsed.content is None
    assert parsed.finish_reason == "stop"
    assert parsed.native_finish_reason == "end_turn"
    parser, outputs = run(render_body_as_stream(body), request=request)
    assert outputs == ['{"city":"Oslo","n":2}']
    final = parser.finish()
    assert (final.text, final.content, final.finish_reason) == (parsed.text, None, "stop")
    # without the request it is an ordinary tool call
    assert wire.parse_response(body).content == [
        {"type": "tool_call", "id": "toolu_9", "name": "json_object", "arguments": '{"city":"Oslo","n":2}'}
    ]


def test_a_refusal_carries_the_explanation() -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "Not with malware."}
    body = {
        "id": "msg_4",
        "model": "m",
        "type": "message",
        "role": "assistant",
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": details,
        "usage": {"input_tokens": 5, "output_tokens": 1},
        "content": [{"type": "text", "text": "I can"}],
    }
    parsed = wire.parse_response(body)
    assert parsed.refusal == "Not with malware."
    assert parsed.finish_reason == "content_filter"
    raw = render_body_as_stream(body).replace(
        b'"stop_sequence":null}', b'"stop_sequence":null,"stop_details":' + orjson.dumps(details) + b"}"
    )
    parser, outputs = run(raw)
    assert parser.finish() == parsed
    assert outputs[-1] == [Delta("refusal", 1, text="Not with malware.", value={"stop_details": details})]
    # relayed to an Anthropic caller, the explanation goes back into stop_details, not the text
    writer = wire.StreamWriter("msg_4", "m", TokenUsage(5, 1, 6))
    relayed = writer.start()
    for out in outputs:
        relayed += writer.delta(out) if isinstance(out, str) else writer.deltas(out)
    relayed += writer.finish("content_filter", TokenUsage(5, 1, 6))
    message = sdk_stream(relayed)
    assert message["content"] == [{"type": "text", "text": "I can"}]
    assert message["stop_reason"] == "refusal"
    assert message["stop_details"] == details


def test_another_apis_refusal_message_is_written_as_text() -> None:
    writer = wire.StreamWriter("msg_4b", "m", USAGE)
    raw = (
        writer.start()
        + writer.deltas([Delta("refusal", 0, text="I can't help "), Delta("refusal", 0, text="with that.")])
        + writer.finish("content_filter", USAGE)
    )
    plain = wire.render_response(
        id="msg_4b",
        model="m",
        text="",
        finish_reason="content_filter",
        usage=USAGE,
        refusal="I can't help with that.",
    )
    assert sdk_stream(raw) == sdk_plain(plain)


# ---------------------------------------------------------------- render_response


def test_rendered_content_is_a_message_the_sdk_reads_and_parses_back() -> None:
    content = THINKING_CONTENT[:2] + TOOL_CONTENT
    body = wire.render_response(
        id="msg_5", model="m", text="", finish_reason="tool_calls", usage=USAGE, content=content
    )
    message = Message.model_validate(body)
    assert [b.type for b in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
        "tool_use",
    ]
    assert message.content[3].input == {"location": "San Francisco, CA", "unit": "celsius"}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 25
    parsed = wire.parse_response(orjson.loads(orjson.dumps(body)))
    assert parsed.content == content
    assert parsed.usage == USAGE


def test_rendered_tool_arguments_that_are_not_an_object_become_empty_input() -> None:
    content = [{"type": "tool_call", "id": "t", "name": "f", "arguments": "oops"}]
    body = wire.render_response(
        id="m", model="m", text="", finish_reason="tool_calls", usage=USAGE, content=content
    )
    assert body["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]
    unsigned = wire.render_response(
        id="m",
        model="m",
        text="",
        finish_reason="stop",
        usage=USAGE,
        content=[{"type": "thinking", "text": "hm"}],
    )
    assert Message.model_validate(unsigned).content[0].signature == ""  # type: ignore[union-attr]


def test_a_refusal_renders_as_a_text_block_with_stop_reason_refusal() -> None:
    body = wire.render_response(
        id="m",
        model="m",
        text="",
        finish_reason="content_filter",
        usage=USAGE,
        refusal="I can't help with that.",
    )
    assert body["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert body["stop_reason"] == "refusal"
    Message.model_validate(body)


def test_usage_without_reasoning_has_no_details_and_with_it_round_trips() -> None:
    assert "output_tokens_details" not in wire.usage_to_wire(TokenUsage(1, 2, 3))
    assert wire.usage_from_wire(wire.usage_to_wire(USAGE)) == USAGE


# ---------------------------------------------------------------- StreamWriter


def test_start_is_message_start_and_ping_only_and_the_first_text_opens_the_block() -> None:
    writer = wire.StreamWriter("msg_6", "m", USAGE)
    assert [e.event for e in events(writer.start())] == ["message_start", "ping"]
    first = events(writer.delta("Hel"))
    assert [e.event for e in first] == ["content_block_start", "content_block_delta"]
    assert [e.event for e in events(writer.delta("lo"))] == ["content_block_delta"]
    tail = events(writer.finish("stop", USAGE))
    assert [e.event for e in tail] == ["content_block_stop", "message_delta", "message_stop"]
    assert orjson.loads(tail[1].data)["usage"]["output_tokens_details"] == {"thinking_tokens": 25}


def test_an_empty_answer_has_no_block() -> None:
    writer = wire.StreamWriter("msg_7", "m", USAGE)
    raw = writer.start() + writer.finish("stop", USAGE)
    assert [e.event for e in events(raw)] == ["message_start", "ping", "message_delta", "message_stop"]
    assert sdk_stream(raw)["content"] == []


def content_as_deltas(content: list[dict[str, Any]], first_index: int = 0, step: int = 1) -> list[Delta]:
    """Neutral content as the deltas a provider's stream would carry (arguments in two pieces)."""
    out: list[Delta] = []
    for n, block in enumerate(content):
        index = first_index + n * step
        kind = block["type"]
        if kind == "text":
            out += [
                Delta("text", index, text=block["text"][:5]),
                Delta("text", index, text=block["text"][5:]),
            ]
        elif kind == "thinking":
            out += [
                Delta("thinking", index, text=block["text"]),
                Delta("signature", index, text=block["signature"]),
            ]
        elif kind == "redacted_thinking":
            out.append(Delta("redacted_thinking", index, text=block["data"]))
        elif kind == "tool_call":
            arguments = block["arguments"]
            out += [
                Delta("tool_call", index, id=block["id"], name=block["name"]),
                Delta("tool_arguments", index, text=arguments[:7]),
                Delta("tool_arguments", index, text=arguments[7:]),
            ]
    return out


@pytest.mark.parametrize(("first_index", "step"), [(0, 1), (3, 4)])
def test_writer_renders_every_delta_kind_as_the_sdk_accumulates_the_plain_message(
    first_index: int, step: int
) -> None:
    content = [*THINKING_CONTENT[:2], *TOOL_CONTENT, THINKING_CONTENT[2]]
    writer = wire.StreamWriter("msg_8", "m", USAGE)
    extra = [Delta("logprobs", 0, value=[]), Delta("meta", 0, value={"system_fingerprint": "x"})]
    raw = (
        writer.start()
        + writer.deltas(content_as_deltas(content, first_index, step) + extra)
        + writer.finish("tool_calls", USAGE)
    )
    plain = wire.render_response(
        id="msg_8", model="m", text="", finish_reason="tool_calls", usage=USAGE, content=content
    )
    assert sdk_stream(raw) == sdk_plain(plain)
    indices = [orjson.loads(e.data)["index"] for e in events(raw) if e.event == "content_block_start"]
    assert indices == [0, 1, 2, 3, 4, 5]  # the writer's own contiguous numbering
    parser, _ = run(raw)
    final = parser.finish()
    assert final.content == wire.parse_response(orjson.loads(orjson.dumps(plain))).content == content
    assert final.usage == USAGE


def test_text_after_a_tool_call_opens_a_new_text_block() -> None:
    writer = wire.StreamWriter("msg_9", "m", USAGE)
    raw = (
        writer.start()
        + writer.delta("Let me look.")
        + writer.deltas(
            [Delta("tool_call", 1, id="t1", name="f"), Delta("tool_arguments", 1, text='{"a":1}')]
        )
        + writer.delta("Done")
        + writer.deltas([Delta("text", 7, text="!")])
        + writer.finish("stop", USAGE)
    )
    message = sdk_stream(raw)
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        {"type": "text", "text": "Done!"},
    ]
    names = [e.event for e in events(raw)]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3


def test_a_signature_without_thinking_text_opens_its_thinking_block() -> None:
    writer = wire.StreamWriter("msg_10", "m", USAGE)
    raw = (
        writer.start()
        + writer.deltas([Delta("signature", 0, text="c2ln")])
        + writer.delta("ok")
        + writer.finish("stop", USAGE)
    )
    assert sdk_stream(raw)["content"] == [
        {"type": "thinking", "thinking": "", "signature": "c2ln"},
        {"type": "text", "text": "ok"},
    ]


def test_a_relayed_stream_is_the_stream_it_came_from() -> None:
    """Parser output fed to a writer (what the gateway does for an Anthropic caller) gives back
    the same answer: frame for frame the same content, the SDK sees the same message."""
    for name in ("messages_thinking_stream.sse", "messages_tool_use_stream.sse"):
        raw = (FIXTURES / name).read_bytes()
        parser, outputs = run(raw)
        final = parser.finish()
        assert final.usage is not None
        writer = wire.StreamWriter(final.id, final.model, final.usage)
        relayed = writer.start()
        for out in outputs:
            relayed += writer.delta(out) if isinstance(out, str) else writer.deltas(out)
        relayed += writer.finish(final.finish_reason, final.usage)
        again, _ = run(relayed)
        assert again.finish().content == final.content
        original, ours = sdk_stream(raw), sdk_stream(relayed)
        assert ours["content"] == original["content"]
        assert ours["stop_reason"] == original["stop_reason"]


def test_render_stream_still_renders_a_text_stream() -> None:
    raw = b"".join(
        wire.render_stream(id="msg_11", model="m", pieces=["a", "b"], finish_reason="stop", usage=USAGE)
    )
    assert sdk_stream(raw)["content"] == [{"type": "text", "text": "ab"}]
    plain = wire.render_response(id="msg_11", model="m", text="ab", finish_reason="stop", usage=USAGE)
    assert sdk_stream(raw) == sdk_plain(plain)
