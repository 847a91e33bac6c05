"""SSE decoding of the real fixture streams, however the network splits them, and encoding."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from greenlang_llm.wire.sse import ServerSentEvent, SSEDecoder, encode_event

FIXTURES = Path(__file__).parent / "fixtures"
STREAMS = sorted(FIXTURES.glob("*/*.sse"))


def decode(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def expected_events(raw: bytes) -> list[ServerSentEvent]:
    """The reference parse: blocks separated by a blank line, ``event:``/``data:`` fields."""
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        out.append(ServerSentEvent(event, "\n".join(data)))
    return out


def test_there_are_fixture_streams() -> None:
    assert len(STREAMS) >= 5  # the five text streams, and those of tool calls and thinking


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_decodes_in_one_piece(path: Path) -> None:
    raw = path.read_bytes()
    events = decode([raw])
    assert events == expected_events(raw)
    for event in events:
        if event.data != "[DONE]":
            json.loads(event.data)  # every payload is whole JSON (padding included)
    if path.parent.name == "anthropic":
        assert all(e.event for e in events)
        assert all(json.loads(e.data)["type"] == e.event for e in events)
    else:
        assert all(e.event is None for e in events)
        assert events[-1].data == "[DONE]"


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_split_at_every_byte_position_gives_the_same_events(path: Path) -> None:
    raw = path.read_bytes()
    reference = decode([raw])
    for cut in range(1, len(raw)):
        assert decode([raw[:cut], raw[cut:]]) == reference, f"split at byte {cut}"


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_fed_one_byte_at_a_time(path: Path) -> None:
    raw = path.read_bytes()
    assert decode(raw[i : i + 1] for i in range(len(raw))) == decode([raw])


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
@pytest.mark.parametrize("path", STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_crlf_and_cr_line_endings_decode_the_same(path: Path, newline: bytes) -> None:
    raw = path.read_bytes()
    converted = raw.replace(b"\n", newline)
    assert decode([converted]) == decode([raw])
    middle = len(converted) // 2
    assert decode(converted[i : i + 7] for i in range(0, len(converted), 7)) == decode([raw])
    assert decode([converted[:middle], converted[middle:]]) == decode([raw])


def test_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    assert decode([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [
        ServerSentEvent(None, "a"), ServerSentEvent(None, "b")
    ]


def test_multibyte_utf8_split_across_chunks() -> None:
    raw = encode_event("héllo 🌍 日本")
    for cut in range(1, len(raw)):
        assert decode([raw[:cut], raw[cut:]]) == [ServerSentEvent(None, "héllo 🌍 日本")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode([b"data: one\ndata: two\ndata:three\n\n"]) == [ServerSentEvent(None, "one\ntwo\nthree")]


def test_comments_ids_and_retry_fields_are_ignored() -> None:
    raw = b": keep-alive\n\nid: 7\nretry: 100\nevent: ping\ndata: {}\n\n"
    assert decode([raw]) == [ServerSentEvent("ping", "{}")]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert decode([b"data\n\n"]) == [ServerSentEvent(None, "")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode([b"data:  two spaces\n\n"]) == [ServerSentEvent(None, " two spaces")]


def test_a_last_event_without_its_blank_line_is_flushed() -> None:
    assert decode([b"data: [DONE]"]) == [ServerSentEvent(None, "[DONE]")]
    assert decode([b"event: message_stop\ndata: {}\n"]) == [ServerSentEvent("message_stop", "{}")]


def test_blank_lines_alone_produce_no_events() -> None:
    assert decode([b"\n\n\r\n\n"]) == []


def test_an_oversized_line_is_refused() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(ValueError, match="longer than 100"):
        list(decoder.feed(b"data: " + b"x" * 200))


def test_encode_event_round_trips() -> None:
    payloads = [("message_start", '{"type":"message_start"}'), (None, '{"a": 1}'), (None, "[DONE]")]
    raw = b"".join(encode_event(data, event) for event, data in payloads)
    assert raw.startswith(b"event: message_start\ndata: ")
    assert decode([raw]) == [ServerSentEvent(e, d) for e, d in payloads]
    assert encode_event(b"[DONE]") == b"data: [DONE]\n\n"


def _reference(data: bytes) -> list[ServerSentEvent]:
    """The WHATWG rules written plainly, for the whole input at once (no incremental state)."""
    import re

    lines = re.split(rb"\r\n|\r|\n", data)
    tail = lines.pop()  # after the last line end: an unterminated line, flushed at the end
    if tail:
        lines.append(tail)
    lines.append(b"")
    out: list[ServerSentEvent] = []
    name: str | None = None
    values: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace")
        if not line:
            if values or name is not None:
                out.append(ServerSentEvent(name, "\n".join(values)))
            name, values = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            values.append(value)
        elif field == "event":
            name = value
    return out


@pytest.mark.parametrize(
    "raw",
    [
        b"data: a\n\n",
        b"event: x\ndata: 1\ndata: 2\n\ndata:b\n\n",
        b"data\n\nevent:\n\n: c\nid: 3\nretry: 1\ndata:  two spaces\n\n",
        b"data: a\r\n\r\ndata: b\rdata: c\r\r",
        b"data: \xe2\x82\xac euro\n\ndata: \xff bad\n\n",
        b"data: no end",
        b"data: \r",  # a CR that ends the stream is a line end, not data
        b"data: a\r\r",
        b"\n\n\n",
    ],
)
def test_decoding_agrees_with_the_plain_reference_whatever_the_line_ends_and_split(raw: bytes) -> None:
    expected = _reference(raw)
    assert decode([raw]) == expected
    assert decode([bytes([b]) for b in raw]) == expected
    for cut in range(len(raw) + 1):
        assert decode([raw[:cut], raw[cut:]]) == expected


def test_decoding_agrees_with_the_reference_on_random_input() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    multibyte = ["é".encode(), b"\xe2"]  # a whole and a cut multi-byte character
    pieces = st.sampled_from(
        [b"data: ", b"data:", b"event: ", b":", b"\n", b"\r", b"\r\n", b"\n\n", b"x", b" ", *multibyte]
    )

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(parts=st.lists(pieces, max_size=40), cut=st.integers(min_value=0, max_value=200))
    def run(parts: list[bytes], cut: int) -> None:
        raw = b"".join(parts)
        expected = _reference(raw)
        assert decode([raw]) == expected
        assert decode([raw[:cut], raw[cut:]]) == expected

    run()
