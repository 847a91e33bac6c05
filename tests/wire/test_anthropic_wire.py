"""greenlang_llm.wire.anthropic against the captured fixtures and by round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenlang_llm._errors import InvalidRequestError, StreamInterruptedError, error_from_http
from greenlang_llm._types import GenerationRequest, TokenUsage
from greenlang_llm.wire import anthropic as wire
from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
STREAM_TEXT = (
    "It stays open for a cool-down period, then admits a single probe request (the half-open state). "
    "If the probe succeeds the breaker closes; if it fails, it opens again for another cool-down."
)


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


def feed_all(parser: wire.StreamParser, evs: list[ServerSentEvent]) -> None:
    for ev in evs:
        parser.feed(ev)


def run_parser(evs: list[ServerSentEvent]) -> tuple[wire.StreamParser, list[str]]:
    parser = wire.StreamParser(provider="anthropic")
    deltas = [d for ev in evs if (d := parser.feed(ev)) is not None]
    return parser, deltas


def http_fixture(name: str) -> tuple[int, dict[str, str], bytes]:
    head, _, body = (FIXTURES / name).read_bytes().partition(b"\n\n")
    lines = head.decode().splitlines()
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, body


def test_plain_response_usage_counts_cache_tokens_inside_input() -> None:
    parsed = wire.parse_response(load("messages_response.json"))
    assert parsed.text.startswith("A circuit breaker stops")
    assert parsed.finish_reason == "stop"
    assert parsed.native_finish_reason == "end_turn"
    assert parsed.id == "msg_011CgE49n3ix8NQeEtoDDwCc"
    assert parsed.model == "claude-sonnet-4-6"
    assert parsed.usage == TokenUsage(2734, 52, 2786, cache_read_tokens=2304, cache_write_tokens=412)


@pytest.mark.parametrize("chunk", [0, 1, 7, 64])
def test_stream_accumulates_text_and_takes_cumulative_usage(chunk: int) -> None:
    parser, deltas = run_parser(events((FIXTURES / "messages_stream.sse").read_bytes(), chunk))
    final = parser.finish()
    assert "".join(deltas) == STREAM_TEXT == final.text
    assert len(deltas) == 6
    assert final.usage == TokenUsage(2734, 41, 2775, cache_read_tokens=2304, cache_write_tokens=412)
    assert final.finish_reason == "stop"
    assert final.id == "msg_011Cg2uimPv7NhAiAe77o7jS"


def test_stream_error_event_raises_with_partial_text_and_overloaded_status() -> None:
    parser = wire.StreamParser()
    with pytest.raises(StreamInterruptedError) as info:
        feed_all(parser, events((FIXTURES / "messages_stream_error.sse").read_bytes()))
    partial = "It stays open for a cool-down period, then admits a single probe request (the"
    assert info.value.partial_text == partial
    assert info.value.status_code == 529
    assert info.value.retryable is True
    assert "overloaded_error" in str(info.value)


def test_stream_without_message_stop_is_interrupted() -> None:
    evs = [e for e in events((FIXTURES / "messages_stream.sse").read_bytes()) if e.event != "message_stop"]
    parser, _ = run_parser(evs)
    with pytest.raises(StreamInterruptedError) as info:
        parser.finish()
    assert info.value.partial_text == STREAM_TEXT


def test_stream_ignores_ping_unknown_events_and_events_after_stop() -> None:
    evs = events((FIXTURES / "messages_stream.sse").read_bytes())
    extra = [ServerSentEvent("ping", '{"type":"ping"}'), ServerSentEvent("thinking_budget", '{"x": 1}')]
    parser, _deltas = run_parser(evs[:3] + extra + evs[3:] + [ServerSentEvent("error", "{}")])
    assert parser.finish().text == STREAM_TEXT


def test_stream_invalid_json_is_interrupted() -> None:
    parser = wire.StreamParser()
    start, good = events(wire.StreamWriter("msg_1", "m", TokenUsage(1, 0, 1)).delta("ab"))
    assert parser.feed(start) is None  # the text block opens empty
    assert parser.feed(good) == "ab"
    with pytest.raises(StreamInterruptedError) as info:
        parser.feed(ServerSentEvent("content_block_delta", '{"type":"content_block_delta", "delta": {'))
    assert info.value.partial_text == "ab"


def test_error_bodies_match_the_status_table() -> None:
    cases = [("error_400.json", 400), ("error_401.json", 401), ("error_529_overloaded.json", 529)]
    for name, status in cases:
        body = load(name)
        assert body["error"]["type"] == wire.ERROR_TYPES[status]
        ours = wire.error_body(status, body["error"]["message"], request_id=body["request_id"])
        assert ours == body
    status, headers, body = http_fixture("error_429.http")
    assert orjson.loads(body)["error"]["type"] == wire.error_type_for_status(status)
    assert int(headers["content-length"]) == len(body)
    assert error_from_http(status, headers, body).retry_after == 11.0  # type: ignore[attr-defined]
    assert wire.error_type_for_status(503) == "api_error"
    assert wire.STATUS_BY_TYPE["overloaded_error"] == 529


def test_build_request_folds_system_messages_and_omits_unset_fields() -> None:
    request = GenerationRequest(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        system="You are terse.",
        max_tokens=50,
    )
    body = wire.build_request(request, "claude-sonnet-4-6", stream=False)
    assert body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "You are terse.\n\nBe brief.",
        "stream": False,
    }


def test_request_example_round_trips_through_parse_and_build() -> None:
    example = load("request_example.json")
    request, options = wire.parse_request(example)
    assert options.model == "claude-sonnet-4-6"
    assert options.stream is True
    assert request.temperature == 0.2
    assert request.stop == ["</answer>", "\n\nEND"]
    assert wire.build_request(request, options.model, stream=options.stream) == example


def test_count_tokens_request_accepts_system_block_list() -> None:
    request, model = wire.parse_count_tokens_request(load("count_tokens_request.json"))
    assert model == "claude-sonnet-4-6"
    assert request.system == "You are a concise assistant for the operators of an LLM gateway."
    assert wire.render_count_tokens(33) == load("count_tokens_response.json")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages"),
        ({"temperature": 1.5}, "temperature"),
        ({"stop_sequences": "END"}, None),
        ({"stream": "yes"}, "stream"),
        ({"system": [{"type": "image"}]}, "system"),
    ],
)
def test_parse_request_names_the_bad_field(change: dict[str, Any], field: str | None) -> None:
    body = {**load("request_example.json"), **change}
    body = {k: v for k, v in body.items() if v is not None}
    if field is None:  # a single string is accepted as one stop sequence
        assert wire.parse_request(body)[0].stop == ["END"]
        return
    with pytest.raises(InvalidRequestError) as info:
        wire.parse_request(body)
    assert str(info.value).startswith(field)
    assert getattr(info.value, "param", None) == field


def test_parse_request_rejects_non_object_and_keeps_extra_fields() -> None:
    with pytest.raises(InvalidRequestError):
        wire.parse_request([1, 2])
    request, options = wire.parse_request({**load("request_example.json"), "inference_geo": "us"})
    assert options.extra == {"inference_geo": "us"}
    assert request.origin is not None
    assert request.origin.unknown == ("inference_geo",)


def test_rendered_response_has_the_api_field_order_and_round_trips() -> None:
    usage = TokenUsage(2734, 52, 2786, cache_read_tokens=2304, cache_write_tokens=412)
    fixture = load("messages_response.json")
    body = wire.render_response(
        id=fixture["id"],
        model=fixture["model"],
        text=fixture["content"][0]["text"],
        finish_reason="stop",
        usage=usage,
    )
    assert list(body) == list(fixture)
    assert body["usage"]["input_tokens"] == 18
    assert wire.parse_response(orjson.loads(orjson.dumps(body))) == wire.parse_response(fixture)


NEUTRAL = ["stop", "stop_sequence", "length", "tool_calls", "content_filter", "pause"]


@pytest.mark.parametrize("neutral", NEUTRAL)
def test_finish_reasons_round_trip(neutral: str) -> None:
    assert wire.TO_NEUTRAL[wire.FROM_NEUTRAL[neutral]] == neutral


def test_stream_writer_frames_follow_the_fixture_order_and_parse_back() -> None:
    usage = TokenUsage(2734, 41, 2775, cache_read_tokens=2304, cache_write_tokens=412)
    pieces = ["It stays", " open", ' "quoted"\n']
    raw = b"".join(
        wire.render_stream(id="msg_1", model="m", pieces=pieces, finish_reason="length", usage=usage)
    )
    ours = events(raw)
    theirs = [e.event for e in events((FIXTURES / "messages_stream.sse").read_bytes())]
    names = [e.event for e in ours]
    # the writer opens the text block with the first text, after the ping (the API's ping
    # comes after it; either order is valid grammar, rule 7)
    assert names[:3] == [theirs[0], theirs[2], theirs[1]]
    assert names[-3:] == theirs[-3:]
    assert all(orjson.loads(e.data)["type"] == e.event for e in ours)
    parser, deltas = run_parser(ours)
    final = parser.finish()
    assert deltas == pieces
    assert final.usage == usage
    assert final.finish_reason == "length"
    start = orjson.loads(ours[0].data)["message"]["usage"]
    assert start["output_tokens"] == 1
    assert start["input_tokens"] == 18


def test_stream_writer_error_event_is_what_the_parser_raises_on() -> None:
    parser = wire.StreamParser()
    (ev,) = events(wire.StreamWriter.error(529, "Overloaded"))
    assert ev.event == "error"
    with pytest.raises(StreamInterruptedError) as info:
        parser.feed(ev)
    assert info.value.status_code == 529


def test_usage_to_and_from_wire_are_inverse() -> None:
    usage = TokenUsage(100, 7, 107, cache_read_tokens=60, cache_write_tokens=30)
    assert wire.usage_to_wire(usage)["input_tokens"] == 10
    assert wire.usage_from_wire(wire.usage_to_wire(usage)) == usage
    assert wire.usage_from_wire({"input_tokens": None, "output_tokens": 3}) == TokenUsage(0, 3, 3)


def test_render_models_lists_ids() -> None:
    body = wire.render_models(["a", "b"])
    assert [m["id"] for m in body["data"]] == ["a", "b"]
    assert body["first_id"] == "a"
    assert body["last_id"] == "b"
    assert body["has_more"] is False


@given(
    uncached=st.integers(0, 10**7),
    read=st.integers(0, 10**7),
    write=st.integers(0, 10**7),
    output=st.integers(0, 10**6),
)
def test_usage_round_trip_holds_for_any_counts(uncached: int, read: int, write: int, output: int) -> None:
    usage = TokenUsage(
        uncached + read + write,
        output,
        uncached + read + write + output,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
    wire_usage = wire.usage_to_wire(usage)
    assert wire_usage["input_tokens"] == uncached
    assert wire.usage_from_wire(wire_usage) == usage
