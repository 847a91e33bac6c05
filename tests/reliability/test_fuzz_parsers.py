"""Bad input, property-fuzzed: the wire request parsers, the SSE decoder and the stream parsers.

Everything that reads bytes from a caller or an upstream may raise only its documented
errors, whatever it is fed, and must return promptly:

- ``wire.anthropic.parse_request`` / ``wire.openai.parse_request``: ``InvalidRequestError``
  (``RequestFieldError``, naming the field) — the gateway turns it into a 400;
- ``wire.*.parse_response`` (an upstream's plain reply): never raises on a JSON object;
- ``SSEDecoder.feed``/``flush``: ``ValueError`` only for a line over ``max_event_bytes``, and
  the events do not depend on how the bytes were split;
- ``wire.*.StreamParser.feed``/``finish``: ``StreamInterruptedError`` only, whose
  ``partial_text`` is exactly the deltas handed out so far.

The gateway-level fuzz (schemathesis over the OpenAPI description, no 5xx) lives in
tests/gateway/test_openapi.py and is not repeated here.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import SOAK

from greenlang_llm._errors import InvalidRequestError, StreamInterruptedError
from greenlang_llm.wire import anthropic as wa
from greenlang_llm.wire import openai as wo
from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder

EXAMPLES = 3000 if SOAK else 300
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)

ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "", None, 3])
CONTENT = (
    st.text(max_size=30)
    | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "x"]), "text": json_values}),
               max_size=3)
    | json_values
)
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": CONTENT}) | json_values


def _near_valid(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed bodies with every field drawn from good and bad values."""
    fields = {
        "model": st.sampled_from(["default", "", "m" * 300]) | json_values,
        "messages": st.lists(MESSAGE, max_size=4) | json_values,
        "max_tokens": st.integers(min_value=-5, max_value=2**65) | json_values,
        "max_completion_tokens": st.integers(min_value=-5, max_value=2**65) | json_values,
        "temperature": st.floats(allow_nan=True) | json_values,
        "stop": st.lists(st.text(max_size=5), max_size=6) | json_values,
        "stop_sequences": st.lists(st.text(max_size=5), max_size=6) | json_values,
        "system": st.text(max_size=20) | st.lists(json_values, max_size=3) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": st.fixed_dictionaries({"include_usage": json_values}) | json_values,
    }
    return st.fixed_dictionaries({}, optional={k: fields[k] for k in keys})


ANTHROPIC_KEYS = ["model", "messages", "max_tokens", "temperature", "stop_sequences", "system", "stream"]
OPENAI_KEYS = ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stop", "stream",
               "stream_options"]


def _parse_or_400(parse: Any, body: Any) -> None:
    try:
        request, options = parse(body)
    except InvalidRequestError:
        return
    assert request.max_tokens >= 1
    assert isinstance(options.model, str)
    assert options.model


@pytest.mark.parametrize(
    ("parse", "keys"), [(wa.parse_request, ANTHROPIC_KEYS), (wo.parse_request, OPENAI_KEYS)],
    ids=["anthropic", "openai"],
)
def test_request_parsers_raise_only_invalid_request_errors(parse: Any, keys: list[str]) -> None:
    @FUZZ
    @given(body=_near_valid(keys) | json_values)
    def run(body: Any) -> None:
        _parse_or_400(parse, body)

    run()


@pytest.mark.parametrize("parse", [wa.parse_request, wo.parse_request], ids=["anthropic", "openai"])
def test_request_parsers_survive_any_json_document(parse: Any) -> None:
    """What the gateway hands over after ``orjson.loads`` of arbitrary bytes."""

    @FUZZ
    @given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    def run(raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        _parse_or_400(parse, body)

    run()


@pytest.mark.parametrize("parse", [wa.parse_response, wo.parse_response], ids=["anthropic", "openai"])
def test_response_parsers_never_raise_on_a_json_object(parse: Any) -> None:
    objects = st.dictionaries(st.sampled_from(
        ["id", "model", "content", "choices", "usage", "stop_reason", "stop_sequence", "type", "message"]
    ), json_values, max_size=6)

    @FUZZ
    @given(body=objects)
    def run(body: dict[str, Any]) -> None:
        parsed = parse(body)
        assert isinstance(parsed.text, str)

    run()


# -- SSE -------------------------------------------------------------------------------------

SSE_BYTES = st.lists(
    st.sampled_from([b"data: ", b"event: ", b":", b"data:", b"\n", b"\r", b"\r\n", b"\n\n", b"x", b"{}",
                     b"[DONE]", b"id: 1", b"retry: 5", "é".encode(), b"\xe2\x82", b"\xff", b" "])
    | st.binary(max_size=8),
    max_size=60,
).map(b"".join)


def _decode(chunks: list[bytes], max_event_bytes: int = 8 * 1024 * 1024) -> list[ServerSentEvent]:
    decoder = SSEDecoder(max_event_bytes)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def test_sse_decoder_events_do_not_depend_on_the_split() -> None:
    @FUZZ
    @given(data=SSE_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
    def run(data: bytes, cuts: list[int]) -> None:
        whole = _decode([data])
        points = sorted({min(c, len(data)) for c in cuts})
        pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
        assert _decode(pieces) == whole
        assert _decode([bytes([b]) for b in data]) == whole

    run()


def test_sse_decoder_refuses_an_endless_line_with_a_value_error() -> None:
    @FUZZ
    @given(size=st.integers(min_value=65, max_value=4096), step=st.integers(min_value=1, max_value=64))
    def run(size: int, step: int) -> None:
        line = b"data: " + b"a" * size
        with pytest.raises(ValueError, match="longer than"):
            _decode([line[i:i + step] for i in range(0, len(line), step)], max_event_bytes=64)

    run()


# -- stream parsers ----------------------------------------------------------------------------

ANTHROPIC_EVENTS = ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                    "message_delta", "message_stop", "ping", "error", None, "weird"]


def _event_data(kinds: list[str | None]) -> st.SearchStrategy[str]:
    shaped = st.fixed_dictionaries(
        {"type": st.sampled_from([k for k in kinds if k]) | json_values},
        optional={
            "delta": st.fixed_dictionaries({"type": st.sampled_from(["text_delta", "x"]) | json_values,
                                            "text": json_values}, optional={"stop_reason": json_values})
            | json_values,
            "message": st.fixed_dictionaries({}, optional={"id": json_values, "model": json_values,
                                                           "usage": json_values}) | json_values,
            "content_block": st.fixed_dictionaries({"type": st.just("text") | json_values,
                                                    "text": json_values}) | json_values,
            "usage": json_values,
            "error": st.fixed_dictionaries({"type": json_values, "message": json_values}) | json_values,
            "choices": st.lists(st.fixed_dictionaries(
                {"index": st.just(0) | json_values, "delta": st.fixed_dictionaries({"content": json_values})
                 | json_values, "finish_reason": st.sampled_from(["stop", "length", None]) | json_values}),
                max_size=2) | json_values,
            "id": json_values, "model": json_values,
        },
    )
    return shaped.map(lambda d: json.dumps(d)) | st.just("[DONE]") | st.text(max_size=20)


def _feed_all(parser: Any, events: list[ServerSentEvent]) -> None:
    handed: list[str] = []
    try:
        for event in events:
            delta = parser.feed(event)
            if delta is not None:
                assert isinstance(delta, str)
                handed.append(delta)
        parsed = parser.finish()
    except StreamInterruptedError as exc:
        partial = exc.partial_text
        assert partial == "".join(handed)
        return
    assert parsed.text == "".join(handed)


@pytest.mark.parametrize("make", [wa.StreamParser, wo.StreamParser], ids=["anthropic", "openai"])
def test_stream_parsers_raise_only_stream_interrupted_with_the_exact_partial_text(make: Any) -> None:
    events = st.lists(
        st.builds(ServerSentEvent, st.sampled_from(ANTHROPIC_EVENTS), _event_data(ANTHROPIC_EVENTS)),
        max_size=12,
    )

    @FUZZ
    @given(evs=events)
    def run(evs: list[ServerSentEvent]) -> None:
        _feed_all(make(provider="fuzz"), evs)

    run()


@pytest.mark.timeout(10)
def test_sse_decoder_is_linear_in_a_long_line_trickled_in_small_reads() -> None:
    """A 32 MiB line in 1 KiB reads: ~0.1 s when linear, minutes when each read rescans the line
    (it did: 8 MiB took 7 s of event-loop time before the decoder kept its scan position)."""
    size, step = 32 * 1024 * 1024, 1024
    decoder = SSEDecoder(max_event_bytes=64 * 1024 * 1024)
    piece = b"a" * step
    assert list(decoder.feed(b"data: ")) == []
    for _ in range(size // step):
        assert list(decoder.feed(piece)) == []
    (event,) = decoder.feed(b"\n\n")
    assert len(event.data) == size
