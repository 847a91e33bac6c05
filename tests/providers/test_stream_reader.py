"""SSEReader hands out the text of one network read at a time (``providers/_stream_reader.py``).

Deltas that arrived in the same read are joined into one: they reached us at the
same instant, so joining delays nothing and every layer above pays once per
read instead of once per token. Deltas in separate reads stay separate, an error
event behind text in the same read is raised only after that text was handed
out, and the final usage chunk still comes last.

The first tests drive the reader with a fake response whose reads are scripted
byte for byte (so which bytes share a read is exact); the rest go through
``HttpProvider.stream`` against the loopback upstream and the simulator.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path
from typing import Any, cast

import pytest

from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers._http import HttpProvider
from greenlang_llm.providers._stream_reader import SSEReader, WireStreamParser
from greenlang_llm.providers.base_provider import GenerationRequest, StreamInterruptedError
from greenlang_llm.wire import anthropic as anthropic_wire
from greenlang_llm.wire import openai as openai_wire
from greenlang_llm.wire.sse import SSEDecoder

FIXTURES = Path(__file__).parents[1] / "wire" / "fixtures"

APIS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "parser": anthropic_wire.StreamParser,
        "stream": "anthropic/messages_stream.sse",
        "error": "anthropic/messages_stream_error.sse",
        "cls": AnthropicProvider,
        "model": "claude-sonnet-4-6",
        "suffix": "",
    },
    "openai": {
        "parser": openai_wire.StreamParser,
        "stream": "openai/chat_stream_include_usage.sse",
        "error": "openai/chat_stream_error.sse",
        "cls": OpenAIProvider,
        "model": "gpt-4o-mini",
        "suffix": "/v1",
    },
}


@pytest.fixture(params=sorted(APIS))
def api(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"name": request.param, **APIS[request.param]}


def raw_events(name: str) -> list[bytes]:
    """A fixture's events, each with its blank line."""
    raw = (FIXTURES / name).read_bytes()
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


def deltas_per_event(api: dict[str, Any], events: list[bytes]) -> list[str | None]:
    """The delta each event carries (None: no text, or the event that fails), parsed one by one."""
    parser = api["parser"](api["name"])
    decoder = SSEDecoder()
    out: list[str | None] = []
    for event in events:
        parsed = list(decoder.feed(event))
        assert len(parsed) == 1
        try:
            out.append(parser.feed(parsed[0]) or None)
        except StreamInterruptedError:
            out.append(None)
            break
    return out


class FakeContent:
    """``resp.content`` whose every ``readany`` returns the next scripted read (then EOF)."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = deque(reads)
        self.calls = 0

    async def readany(self) -> bytes:
        self.calls += 1
        return self.reads.popleft() if self.reads else b""

    def at_eof(self) -> bool:
        return not self.reads


class FakeResponse:
    def __init__(self, reads: list[bytes]) -> None:
        self.content = FakeContent(reads)

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


def reader(api: dict[str, Any], reads: list[bytes]) -> SSEReader:
    parser = cast(WireStreamParser, api["parser"](api["name"]))
    return SSEReader(cast(Any, FakeResponse(reads)), parser, api["name"])


async def texts_of(sse: SSEReader) -> list[str]:
    texts: list[str] = []
    while (text := await sse.next_text()) is not None:
        texts.append(text)
    return texts


# -- the reader, read by read ------------------------------------------------------------------


async def test_deltas_that_arrive_in_one_read_are_handed_out_as_one_text(api: dict[str, Any]) -> None:
    events = raw_events(api["stream"])
    deltas = [d for d in deltas_per_event(api, events) if d]
    assert len(deltas) >= 2
    sse = reader(api, [b"".join(events)])
    assert await texts_of(sse) == ["".join(deltas)]
    assert sse.parser.finish().text == "".join(deltas)
    assert cast(Any, sse.resp).content.calls == 1  # the end was seen in that same read


async def test_deltas_in_separate_reads_are_handed_out_separately(api: dict[str, Any]) -> None:
    events = raw_events(api["stream"])
    deltas = [d for d in deltas_per_event(api, events) if d]
    sse = reader(api, events)  # one read per event
    assert await texts_of(sse) == deltas
    assert sse.parser.finish().text == "".join(deltas)


async def test_each_text_is_what_one_read_completed_even_when_an_event_spans_two_reads(
    api: dict[str, Any],
) -> None:
    events = raw_events(api["stream"])
    per_event = deltas_per_event(api, events)
    with_text = [i for i, d in enumerate(per_event) if d]
    second, third = with_text[1], with_text[2]
    half = len(events[third]) // 2
    reads = [
        b"".join(events[: second + 1]),  # the head and the first two deltas
        events[third][:half],  # half of the third delta's event: no text yet, so read on
        events[third][half:],
        b"".join(events[third + 1 :]),  # the rest and the end
    ]
    deltas = [d for d in per_event if d]
    assert await texts_of(reader(api, reads)) == ["".join(deltas[:2]), deltas[2], "".join(deltas[3:])]


async def test_an_error_event_behind_text_in_the_same_read_is_raised_on_the_next_call(
    api: dict[str, Any],
) -> None:
    events = raw_events(api["error"])
    before = "".join(d for d in deltas_per_event(api, events) if d)
    assert before
    sse = reader(api, [b"".join(events)])
    assert await sse.next_text() == before  # the text first, as if the error had come later
    with pytest.raises(StreamInterruptedError) as info:
        await sse.next_text()
    assert info.value.partial_text == before


async def test_an_error_event_before_any_text_in_the_read_is_raised_at_once(api: dict[str, Any]) -> None:
    events = raw_events(api["error"])
    per_event = deltas_per_event(api, events)
    first_text = next(i for i, d in enumerate(per_event) if d)
    error_at = len(per_event) - 1
    sse = reader(api, [b"".join(events[:first_text]) + events[error_at]])
    with pytest.raises(StreamInterruptedError) as info:
        await sse.next_text()
    assert info.value.partial_text == ""  # nothing handed out: the provider may still retry


# -- through HttpProvider.stream ---------------------------------------------------------------


def provider_on(api: dict[str, Any], base_url: str, key: str, **kw: Any) -> HttpProvider:
    provider: HttpProvider = api["cls"](
        api["model"], api_key=key, base_url=base_url + api["suffix"], rng=random.Random(5), **kw
    )
    return provider


def assert_final_chunk_last(chunks: list[Any]) -> None:
    """Text chunks only, then one final chunk that alone carries finish reason and usage."""
    assert all(c.text and c.usage is None and c.finish_reason is None for c in chunks[:-1])
    final = chunks[-1]
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert final.usage is not None
    assert final.usage.output_tokens > 0


async def test_a_stream_written_in_one_piece_is_one_text_chunk_then_the_final_chunk(
    api: dict[str, Any], upstream: Any, canary_key: str
) -> None:
    events = raw_events(api["stream"])
    deltas = [d for d in deltas_per_event(api, events) if d]
    upstream.reply(pieces=[b"".join(events)])
    async with provider_on(api, upstream.base_url, canary_key) as provider:
        chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    assert [c.text for c in chunks] == ["".join(deltas), ""]
    assert_final_chunk_last(chunks)


async def test_an_error_event_written_with_the_text_comes_after_that_text_and_is_not_retried(
    api: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    events = raw_events(api["error"])
    before = "".join(d for d in deltas_per_event(api, events) if d)
    upstream.reply(pieces=[b"".join(events)]).sse_fixture(api["stream"])
    received: list[str] = []

    async def consume(provider: HttpProvider) -> None:
        async for chunk in provider.stream(GenerationRequest(prompt="hi")):
            received.append(chunk.text)

    async with provider_on(api, upstream.base_url, canary_key, sleep=fake_sleep) as provider:
        with pytest.raises(StreamInterruptedError) as info:
            await consume(provider)
    assert received == [before]
    assert info.value.partial_text == before
    assert len(upstream.posts) == 1  # text was handed out: the error is the caller's, not retried


async def test_the_simulator_without_latency_packs_the_reply_into_one_text_chunk(
    api: dict[str, Any], simulator: Any, canary_key: str
) -> None:
    from greenlang_llm.simulator import ModelBehaviour

    simulator.config.models[api["model"]] = ModelBehaviour(reply_tokens=12)
    async with provider_on(api, simulator.base_url, canary_key) as provider:
        plain = await provider.generate(GenerationRequest(prompt="hi"))
        chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    assert len(plain.text.split()) == 12
    assert [c.text for c in chunks] == [plain.text, ""]
    assert_final_chunk_last(chunks)
    assert chunks[-1].usage == plain.usage


async def test_tokens_with_latency_between_them_are_separate_chunks(
    api: dict[str, Any], simulator: Any, canary_key: str
) -> None:
    from greenlang_llm.simulator import ModelBehaviour

    simulator.config.models[api["model"]] = ModelBehaviour(reply_tokens=6, token_ms=5)
    async with provider_on(api, simulator.base_url, canary_key) as provider:
        plain = await provider.generate(GenerationRequest(prompt="hi"))
        chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    words = plain.text.split()
    assert len(words) == 6
    assert [c.text for c in chunks[:-1]] == [words[0], *(" " + w for w in words[1:])]
    assert_final_chunk_last(chunks)
    assert chunks[-1].usage == plain.usage


_SAME_API_STREAM = (
    Path(__file__).resolve().parents[1] / "wire" / "fixtures" / "openai" / "chat_stream_include_usage.sse"
).read_bytes()


async def test_a_same_api_streams_first_read_is_one_chunk_with_its_meta_and_all_its_text() -> None:
    from greenlang_llm import GenerationRequest
    from greenlang_llm.content import WireOrigin
    from greenlang_llm.wire import openai as wire_openai

    request = GenerationRequest(prompt="x", origin=WireOrigin("openai", {}))
    parser = cast(WireStreamParser, wire_openai.StreamParser("openai", request=request))
    sse = SSEReader(cast(Any, FakeResponse([_SAME_API_STREAM])), parser, "openai")
    first = await sse.next_text()
    assert isinstance(first, list)
    assert [d.kind for d in first] == ["meta", "text"]  # one chunk, not the meta's and then the rest
    assert first[1].text == parser.finish().text
    assert await sse.next_text() is None
