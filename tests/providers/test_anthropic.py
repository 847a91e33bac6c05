"""AnthropicProvider: what it sends, and what it makes of the real API's answers.

Answers are the golden wire fixtures replayed byte for byte by the scripted
loopback upstream; costs are checked to the nano-dollar against rates written
out here (Claude Sonnet 4.6: $3 / $15 per MTok, cache reads $0.30, 5-minute
writes $3.75, 1-hour writes $6).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from greenlang_llm.providers import AnthropicProvider
from greenlang_llm.providers.base_provider import (
    ContextWindowExceededError,
    GenerationRequest,
    ServiceUnavailableError,
    StreamInterruptedError,
)

WIRE_FIXTURES = Path(__file__).parents[1] / "wire" / "fixtures"  # the repo's copy of ../shared/wire-fixtures


def make(upstream: Any, key: str, sleep: Any = None, **kw: Any) -> AnthropicProvider:
    kw.setdefault("model_id", "claude-sonnet-4-6")
    return AnthropicProvider(api_key=key, base_url=upstream.base_url, sleep=sleep, rng=random.Random(3), **kw)


def assert_whole_deltas(texts: list[str], deltas: list[str]) -> None:
    """``texts`` are ``deltas`` in order, each text one or more whole consecutive deltas.

    The reader hands out the deltas of one network read joined, and how the
    upstream's writes fall into reads is up to the network, so the grouping is
    not asserted; that no delta is split, lost, repeated or reordered is.
    """
    rest = list(deltas)
    for text in texts:
        joined = ""
        while rest and len(joined) < len(text):
            joined += rest.pop(0)
        assert joined == text, (texts, deltas)
    assert rest == [], (texts, deltas)


def fixture_json(name: str) -> dict[str, Any]:
    with open(WIRE_FIXTURES / name, "rb") as fh:
        data: dict[str, Any] = orjson.loads(fh.read())
    return data


async def test_sends_the_documented_headers_with_the_key_in_x_api_key(upstream: Any, canary_key: str) -> None:
    upstream.json_fixture("anthropic/messages_response.json")
    provider = make(upstream, canary_key)
    await provider.generate(GenerationRequest(prompt="hi"))
    sent = {k.lower(): v for k, v in upstream.posts[0].headers.items()}
    assert upstream.posts[0].path == "/v1/messages"
    assert sent["x-api-key"] == canary_key
    assert sent["anthropic-version"] == "2023-06-01"
    assert sent["content-type"] == "application/json"
    assert "authorization" not in sent
    await provider.close()


async def test_api_version_can_be_chosen(upstream: Any, canary_key: str) -> None:
    upstream.json_fixture("anthropic/messages_response.json")
    provider = make(upstream, canary_key, api_version="2026-10-21")
    await provider.generate(GenerationRequest(prompt="hi"))
    assert upstream.posts[0].headers["anthropic-version"] == "2026-10-21"
    await provider.close()


async def test_request_maps_messages_system_temperature_and_stop(upstream: Any, canary_key: str) -> None:
    upstream.json_fixture("anthropic/messages_response.json")
    provider = make(upstream, canary_key)
    request = GenerationRequest(
        messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        prompt="c",
        system="be brief",
        temperature=0.7,
        max_tokens=100,
        stop=["\n\nHuman:"],
    )
    await provider.generate(request)
    assert upstream.posts[0].body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        "system": "be brief",
        "temperature": 0.7,
        "stop_sequences": ["\n\nHuman:"],
        "stream": False,
    }
    await provider.close()


async def test_generate_returns_text_finish_reason_and_usage_with_cache_tokens_priced_exactly(
    upstream: Any, canary_key: str
) -> None:
    upstream.json_fixture("anthropic/messages_response.json")
    provider = make(upstream, canary_key)
    response = await provider.generate(GenerationRequest(prompt="Explain circuit breakers."))
    assert response.text.startswith("A circuit breaker stops sending requests")
    assert response.provider == "anthropic"
    assert response.model_id == "claude-sonnet-4-6"
    assert response.finish_reason == "stop"
    assert response.raw is not None
    assert response.raw["id"] == "msg_011CgE49n3ix8NQeEtoDDwCc"
    assert response.latency_ms > 0
    usage = response.usage
    # input = 18 uncached + 412 cache writes + 2304 cache reads (fixture README rule 9)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2734, 52, 2786)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.estimated) == (2304, 412, False)
    # 18 * 3 + 412 * 3.75 + 2304 * 0.30 = 2290.2 $/MTok-units; 52 * 15 = 780
    assert usage.input_cost_usd == 0.0022902
    assert usage.output_cost_usd == 0.00078
    assert usage.total_cost_usd == 0.0030702
    await provider.close()


async def test_one_hour_cache_writes_are_priced_at_their_own_rate(upstream: Any, canary_key: str) -> None:
    body = fixture_json("anthropic/messages_response.json")
    body["usage"]["cache_creation"] = {"ephemeral_5m_input_tokens": 12, "ephemeral_1h_input_tokens": 400}
    upstream.reply(body=body)
    provider = make(upstream, canary_key)
    usage = (await provider.generate(GenerationRequest(prompt="hi"))).usage
    # 18 * 3 + 12 * 3.75 + 400 * 6 + 2304 * 0.30 = 3190.2
    assert usage.input_cost_usd == 0.0031902
    await provider.close()


async def test_one_hour_cache_writes_in_a_stream_are_priced_at_their_own_rate(
    upstream: Any, canary_key: str
) -> None:
    events = upstream_events("anthropic/messages_stream.sse")
    start = orjson.loads(events[0].split(b"data: ", 1)[1])
    split = {"ephemeral_5m_input_tokens": 12, "ephemeral_1h_input_tokens": 400}
    start["message"]["usage"]["cache_creation"] = split
    events[0] = b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
    upstream.reply(pieces=events)
    provider = make(upstream, canary_key)
    chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_cost_usd == 0.0031902  # as in the plain reply above
    await provider.close()


async def test_seed_model_prices_come_out_exactly(upstream: Any, canary_key: str) -> None:
    body = fixture_json("anthropic/messages_response.json")
    body["model"] = "claude-3-sonnet-20240229"
    body["usage"] = {"input_tokens": 1000, "output_tokens": 500}
    upstream.reply(body=body)
    provider = make(upstream, canary_key, model_id="claude-3-sonnet-20240229")
    usage = (await provider.generate(GenerationRequest(prompt="hi"))).usage
    assert (usage.input_cost_usd, usage.output_cost_usd, usage.total_cost_usd) == (0.003, 0.0075, 0.0105)
    await provider.close()


@pytest.mark.parametrize(
    ("stop_reason", "neutral"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause"),
        ("model_context_window_exceeded", "length"),
    ],
)
async def test_stop_reasons_map_to_the_neutral_vocabulary(
    upstream: Any, canary_key: str, stop_reason: str, neutral: str
) -> None:
    body = fixture_json("anthropic/messages_response.json")
    body["stop_reason"] = stop_reason
    upstream.reply(body=body)
    provider = make(upstream, canary_key)
    assert (await provider.generate(GenerationRequest(prompt="hi"))).finish_reason == neutral
    await provider.close()


async def test_stream_yields_the_deltas_in_order_then_a_final_chunk_with_cumulative_usage(
    upstream: Any, canary_key: str
) -> None:
    upstream.sse_fixture("anthropic/messages_stream.sse")
    provider = make(upstream, canary_key)
    chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    assert len(chunks) >= 2
    assert_whole_deltas(
        [c.text for c in chunks[:-1]],
        [
            "It stays open for a",
            " cool-down period, then admits",
            " a single probe request (the",
            " half-open state). If the probe succeeds",
            " the breaker closes; if it fails,",
            " it opens again for another cool-down.",
        ],
    )
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])
    final = chunks[-1]
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert final.usage is not None
    # message_delta's output_tokens (41) replaces message_start's placeholder (1): rule 8
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2734, 41)
    assert (final.usage.cache_read_tokens, final.usage.cache_write_tokens) == (2304, 412)
    assert final.usage.output_cost_usd == 0.000615
    assert final.usage.total_cost_usd == 0.0029052
    assert upstream.posts[0].body["stream"] is True
    await provider.close()


async def test_stream_error_event_after_text_raises_stream_interrupted_with_the_partial_text(
    upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture("anthropic/messages_stream_error.sse").sse_fixture("anthropic/messages_stream.sse")
    provider = make(upstream, canary_key, fake_sleep)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in provider.stream(GenerationRequest(prompt="hi")):
            received.append(chunk.text)

    with pytest.raises(StreamInterruptedError, match="overloaded_error") as info:
        await consume()
    assert_whole_deltas(
        received, ["It stays open for a", " cool-down period, then admits", " a single probe request (the"]
    )
    assert info.value.partial_text == "".join(received)
    assert info.value.status_code == 529
    assert info.value.retryable  # the router may try elsewhere; this provider did not retry
    assert len(upstream.posts) == 1
    await provider.close()


async def test_stream_error_event_before_any_text_is_retried(
    upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    events = upstream_events("anthropic/messages_stream_error.sse")
    upstream.reply(pieces=[events[0], events[-1]])  # message_start, then the error
    upstream.sse_fixture("anthropic/messages_stream.sse")
    provider = make(upstream, canary_key, fake_sleep)
    chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    assert chunks[-1].finish_reason == "stop"
    assert len(upstream.posts) == 2
    assert len(fake_sleep.waits) == 1
    await provider.close()


def upstream_events(name: str) -> list[bytes]:
    with open(WIRE_FIXTURES / name, "rb") as fh:
        raw = fh.read()
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


async def test_stream_ending_without_message_stop_is_an_interruption(upstream: Any, canary_key: str) -> None:
    events = upstream_events("anthropic/messages_stream.sse")
    upstream.reply(pieces=events[:-1])  # everything but message_stop, then a clean end
    provider = make(upstream, canary_key, max_retries=0)
    with pytest.raises(StreamInterruptedError, match="message_stop"):
        async for _ in provider.stream(GenerationRequest(prompt="hi")):
            pass
    await provider.close()


async def test_prompt_too_long_is_context_window_exceeded_and_not_retried(
    upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.json_fixture("anthropic/error_400.json", status=400)
    provider = make(upstream, canary_key, fake_sleep)
    with pytest.raises(ContextWindowExceededError):
        await provider.generate(GenerationRequest(prompt="hi"))
    assert len(upstream.posts) == 1
    await provider.close()


async def test_x_should_retry_false_stops_retries_of_a_529(
    upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.json_fixture(
        "anthropic/error_529_overloaded.json", status=529, headers={"x-should-retry": "false"}
    )
    provider = make(upstream, canary_key, fake_sleep)
    with pytest.raises(ServiceUnavailableError) as info:
        await provider.generate(GenerationRequest(prompt="hi"))
    assert info.value.status_code == 529
    assert len(upstream.posts) == 1
    await provider.close()


def test_count_tokens_and_worst_case_cost_estimate() -> None:
    provider = AnthropicProvider("claude-3-sonnet-20240229")
    request = GenerationRequest(prompt="Explain carbon accounting in 2 sentences.", max_tokens=100)
    tokens = provider.count_tokens(request)
    assert tokens > 0
    # worst case: every prompt token uncached at $3/MTok plus all 100 output tokens at $15/MTok
    assert provider.estimate_cost(request) == pytest.approx(tokens * 3e-6 + 100 * 15e-6, abs=1e-12)
