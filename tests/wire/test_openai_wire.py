"""greenlang_llm.wire.openai against the captured fixtures and by round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenlang_llm._errors import InvalidRequestError, StreamInterruptedError, error_from_http
from greenlang_llm._types import GenerationRequest, TokenUsage
from greenlang_llm.wire import openai as wire
from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
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


def fixture_events(name: str, chunk: int = 0) -> list[ServerSentEvent]:
    return events((FIXTURES / name).read_bytes(), chunk)


def feed_all(parser: wire.StreamParser, evs: list[ServerSentEvent]) -> None:
    for ev in evs:
        parser.feed(ev)


def run_parser(evs: list[ServerSentEvent], **kw: Any) -> tuple[wire.StreamParser, list[str]]:
    parser = wire.StreamParser(provider="openai", **kw)
    deltas = [d for ev in evs if (d := parser.feed(ev)) is not None]
    return parser, deltas


def test_plain_response_usage_keeps_cached_tokens_inside_prompt() -> None:
    parsed = wire.parse_response(load("chat_response.json"))
    assert parsed.text.startswith("A circuit breaker stops")
    assert parsed.finish_reason == "stop"
    assert parsed.model == "gpt-4.1-mini-2025-04-14"
    assert parsed.usage == TokenUsage(2348, 49, 2397, cache_read_tokens=2176)


def test_plain_response_with_empty_choices_and_no_usage_does_not_crash() -> None:
    parsed = wire.parse_response({"id": "x", "choices": []})
    assert parsed.text == ""
    assert parsed.finish_reason is None
    assert parsed.usage is None


@pytest.mark.parametrize("chunk", [0, 1, 13, 100])
def test_stream_with_include_usage_yields_text_then_usage(chunk: int) -> None:
    parser, deltas = run_parser(fixture_events("chat_stream_include_usage.sse", chunk))
    final = parser.finish()
    assert "".join(deltas) == STREAM_TEXT == final.text
    assert final.usage == TokenUsage(2348, 41, 2389, cache_read_tokens=2176)
    assert final.finish_reason == "stop"
    assert final.id == "chatcmpl-rB6fzpfsFQ5A9Ly51V9gO77pBo5MJ"


def test_stream_without_include_usage_has_no_usage() -> None:
    parser, _ = run_parser(fixture_events("chat_stream_no_usage.sse"))
    final = parser.finish()
    assert final.text == STREAM_TEXT
    assert final.usage is None


def test_stream_error_payload_raises_even_though_done_follows() -> None:
    parser = wire.StreamParser()
    with pytest.raises(StreamInterruptedError) as info:
        feed_all(parser, fixture_events("chat_stream_error.sse"))
    assert info.value.partial_text == "It stays open for a cool-down period"
    assert info.value.status_code == 500
    assert info.value.retryable is True


def test_stream_cut_before_finish_reason_is_interrupted() -> None:
    evs = fixture_events("chat_stream_include_usage.sse")[:5]
    parser, deltas = run_parser(evs)
    with pytest.raises(StreamInterruptedError) as info:
        parser.finish()
    assert info.value.partial_text == "".join(deltas)


def test_stream_without_done_is_interrupted_unless_done_is_optional() -> None:
    evs = [e for e in fixture_events("chat_stream_no_usage.sse") if e.data != "[DONE]"]
    with pytest.raises(StreamInterruptedError):
        run_parser(evs)[0].finish()
    assert run_parser(evs, require_done=False)[0].finish().text == STREAM_TEXT


def test_non_standard_finish_reason_is_an_error() -> None:
    writer = wire.StreamWriter("c", "m", 1, include_usage=False)
    raw = writer.start() + writer.delta("a") + writer.finish("stop", TokenUsage(1, 1, 2))
    raw = raw.replace(b'"finish_reason":"stop"', b'"finish_reason":"abort"')
    parser, _ = run_parser(events(raw))
    with pytest.raises(StreamInterruptedError, match="abort"):
        parser.finish()


def test_invalid_json_chunk_is_interrupted() -> None:
    with pytest.raises(StreamInterruptedError):
        wire.StreamParser().feed(ServerSentEvent(None, '{"id": '))


def test_error_fixtures_have_the_shape_error_body_renders() -> None:
    for name, status in [("error_401.json", 401), ("error_404_model.json", 404), ("error_500.json", 500)]:
        body = load(name)
        err = body["error"]
        ours = wire.error_body(status, err["message"], code=err["code"], param=err["param"])
        assert ours == body
        assert list(ours["error"]) == ["message", "type", "param", "code"]
    assert wire.error_body(401, "bad key")["error"]["code"] == "invalid_api_key"
    assert wire.error_body(503, "down")["error"]["type"] == "server_error"


def test_error_429_http_gives_retry_after_ms() -> None:
    head, _, body = (FIXTURES / "error_429.http").read_bytes().partition(b"\n\n")
    headers = dict(line.split(": ", 1) for line in head.decode().splitlines()[1:])
    assert int(headers["content-length"]) == len(body)
    assert orjson.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert error_from_http(429, headers, body).retry_after == pytest.approx(0.372)  # type: ignore[attr-defined]


def test_build_request_puts_system_first_and_sends_only_max_completion_tokens() -> None:
    request = GenerationRequest(prompt="Hi", system="Be brief.", max_tokens=20, temperature=0.0, stop=["X"])
    body = wire.build_request(request, "gpt-4.1-mini", stream=True)
    assert body == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 20,
        "temperature": 0.0,
        "stop": ["X"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    plain = wire.build_request(GenerationRequest(prompt="Hi"), "m", stream=False)
    assert "stream_options" not in plain
    assert "temperature" not in plain
    assert "max_tokens" not in plain


def test_request_example_is_rejected_like_the_real_api() -> None:
    with pytest.raises(wire.RequestFieldError) as info:
        wire.parse_request(load("request_example.json"))
    err = info.value
    expected = load("error_400.json")["error"]
    assert (err.param, err.code) == (expected["param"], expected["code"])
    assert err.message == expected["message"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_either_max_tokens_field_is_accepted_and_round_trips(field: str) -> None:
    example = load("request_example.json")
    del example["max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"]
    request, options = wire.parse_request(example)
    assert request.max_tokens == 256
    assert request.system == "You are a concise assistant for the operators of an LLM gateway."
    assert [m["role"] for m in request.to_messages()] == ["user", "assistant", "user"]
    assert options.stream
    assert options.include_usage
    assert options.model == "gpt-4.1-mini"
    rebuilt = wire.build_request(request, options.model, stream=True)
    assert rebuilt["messages"] == example["messages"]
    assert rebuilt[field] == 256  # the caller's body, as it came
    neutral = dataclasses.replace(request, origin=None)
    translated = wire.build_request(neutral, options.model, stream=True)
    assert translated["max_completion_tokens"] == 256
    assert dataclasses.replace(wire.parse_request(translated)[0], origin=None) == neutral


def test_missing_max_tokens_means_the_library_default() -> None:
    request, options = wire.parse_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert request.max_tokens == 1024
    assert options.stream is False
    assert options.include_usage is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": 3}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"temperature": 2.5}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"stream": False}, "stream_options"),
        ({"stream_options": [1]}, "stream_options"),
    ],
)
def test_parse_request_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    body = {**load("request_example.json"), **change}
    del body["max_tokens"]
    with pytest.raises(InvalidRequestError) as info:
        wire.parse_request(body)
    assert getattr(info.value, "param", None) == field


def test_rendered_response_has_the_api_field_order_and_round_trips() -> None:
    fixture = load("chat_response.json")
    usage = TokenUsage(2348, 49, 2397, cache_read_tokens=2176)
    body = wire.render_response(
        id=fixture["id"],
        model=fixture["model"],
        text=fixture["choices"][0]["message"]["content"],
        finish_reason="stop",
        usage=usage,
        created=fixture["created"],
        system_fingerprint="fp_bbba54d498",
    )
    assert body == fixture


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_writer_matches_fixture_framing_and_parses_back(include_usage: bool) -> None:
    usage = TokenUsage(50, 3, 53, cache_read_tokens=20, cache_write_tokens=10)
    pieces = ["It", " stays", ' "open"\n']
    raw = b"".join(
        wire.render_stream(
            id="c1",
            model="m",
            created=5,
            pieces=pieces,
            finish_reason="length",
            usage=usage,
            include_usage=include_usage,
        )
    )
    ours = events(raw)
    name = "chat_stream_include_usage.sse" if include_usage else "chat_stream_no_usage.sse"
    theirs = fixture_events(name)
    assert ours[-1].data == "[DONE]"
    for mine, real in [(ours[0], theirs[0]), (ours[-2], theirs[-2])]:
        a, b = orjson.loads(mine.data), orjson.loads(real.data)
        b.pop("obfuscation")
        assert list(a) == list(b)
        assert a.get("usage", "absent") is None or ("usage" in a) == ("usage" in b)
    parser, deltas = run_parser(ours)
    final = parser.finish()
    assert deltas == pieces
    assert final.finish_reason == "length"
    assert final.usage == (usage if include_usage else None)


def test_stream_writer_error_is_what_the_parser_raises_on() -> None:
    with pytest.raises(StreamInterruptedError) as info:
        run_parser(events(wire.StreamWriter.error(503, "overloaded")))
    assert info.value.status_code == 503


@pytest.mark.parametrize("neutral", ["stop", "length", "tool_calls", "content_filter"])
def test_finish_reasons_round_trip(neutral: str) -> None:
    assert wire.TO_NEUTRAL[wire.FROM_NEUTRAL[neutral]] == neutral
    assert wire.FROM_NEUTRAL["stop_sequence"] == "stop"
    assert wire.FROM_NEUTRAL["pause"] == "stop"


def test_usage_from_wire_clamps_inconsistent_cache_counts() -> None:
    usage = wire.usage_from_wire(
        {
            "prompt_tokens": 5,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 9, "cache_write_tokens": 3},
        }
    )
    assert usage == TokenUsage(5, 1, 6, cache_read_tokens=5)
    round_trip = TokenUsage(100, 7, 107, cache_read_tokens=60, cache_write_tokens=30)
    assert wire.usage_from_wire(wire.usage_to_wire(round_trip)) == round_trip


def test_render_models_lists_ids() -> None:
    assert [m["id"] for m in wire.render_models(["a", "b"])["data"]] == ["a", "b"]


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
    assert wire_usage["prompt_tokens"] == usage.input_tokens
    assert wire.usage_from_wire(wire_usage) == usage
