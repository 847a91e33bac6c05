"""OpenAIProvider: what it sends, and what it makes of OpenAI(-compatible) answers.

Answers are the golden wire fixtures replayed by the scripted loopback
upstream. gpt-4.1-mini costs $0.40 / $1.60 per MTok with cached input at $0.10.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from greenlang_llm.providers import OpenAIProvider
from greenlang_llm.providers.base_provider import (
    GenerationRequest,
    NotFoundError,
    RateLimitError,
    StreamInterruptedError,
)

FIXTURES = str(Path(__file__).parents[1] / "wire" / "fixtures" / "openai")


def make(upstream: Any, key: str, sleep: Any = None, **kw: Any) -> OpenAIProvider:
    kw.setdefault("model_id", "gpt-4.1-mini")
    kw.setdefault("base_url", upstream.base_url + "/v1")
    return OpenAIProvider(api_key=key, sleep=sleep, rng=random.Random(5), **kw)


def fixture_json(name: str) -> dict[str, Any]:
    with open(f"{FIXTURES}/{name}", "rb") as fh:
        data: dict[str, Any] = orjson.loads(fh.read())
    return data


def events(name: str) -> list[bytes]:
    with open(f"{FIXTURES}/{name}", "rb") as fh:
        raw = fh.read()
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


async def test_sends_the_key_as_a_bearer_token(upstream: Any, canary_key: str) -> None:
    upstream.json_fixture("openai/chat_response.json")
    provider = make(upstream, canary_key)
    await provider.generate(GenerationRequest(prompt="hi"))
    sent = {k.lower(): v for k, v in upstream.posts[0].headers.items()}
    assert upstream.posts[0].path == "/v1/chat/completions"
    assert sent["authorization"] == f"Bearer {canary_key}"
    assert sent["content-type"] == "application/json"
    assert "x-api-key" not in sent
    await provider.close()


async def test_request_sends_system_first_and_only_max_completion_tokens(
    upstream: Any, canary_key: str
) -> None:
    upstream.json_fixture("openai/chat_response.json").sse_fixture("openai/chat_stream_include_usage.sse")
    provider = make(upstream, canary_key)
    request = GenerationRequest(prompt="c", system="be brief", temperature=0.2, max_tokens=64, stop=["END"])
    await provider.generate(request)
    assert upstream.posts[0].body == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "c"}],
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "stop": ["END"],
        "stream": False,
    }
    async for _ in provider.stream(request):
        pass
    assert upstream.posts[1].body["stream"] is True
    assert upstream.posts[1].body["stream_options"] == {"include_usage": True}
    await provider.close()


async def test_generate_prices_cached_prompt_tokens_at_their_rate(upstream: Any, canary_key: str) -> None:
    upstream.json_fixture("openai/chat_response.json")
    provider = make(upstream, canary_key)
    response = await provider.generate(GenerationRequest(prompt="Explain circuit breakers."))
    assert response.provider == "openai"
    assert response.model_id == "gpt-4.1-mini-2025-04-14"  # what upstream reports
    assert response.finish_reason == "stop"
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2348, 49, 2397)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.estimated) == (2176, 0, False)
    # (2348 - 2176) * 0.40 + 2176 * 0.10 = 286.4; 49 * 1.60 = 78.4  (per MTok)
    assert usage.input_cost_usd == 0.0002864
    assert usage.output_cost_usd == 0.0000784
    assert usage.total_cost_usd == 0.0003648
    await provider.close()


async def test_seed_model_prices_come_out_exactly(upstream: Any, canary_key: str) -> None:
    body = fixture_json("chat_response.json")
    body["model"] = "gpt-3.5-turbo"
    body["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    upstream.reply(body=body)
    provider = make(upstream, canary_key, model_id="gpt-3.5-turbo")
    usage = (await provider.generate(GenerationRequest(prompt="hi"))).usage
    assert (usage.input_cost_usd, usage.output_cost_usd, usage.total_cost_usd) == (0.0005, 0.00075, 0.00125)
    await provider.close()


async def test_stream_with_include_usage_ends_with_exact_usage(upstream: Any, canary_key: str) -> None:
    upstream.sse_fixture("openai/chat_stream_include_usage.sse")
    provider = make(upstream, canary_key)
    chunks = [c async for c in provider.stream(GenerationRequest(prompt="hi"))]
    text = "".join(c.text for c in chunks)
    assert text.startswith("It stays")
    final = chunks[-1]
    assert final.finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2348, 41)
    assert final.usage.cache_read_tokens == 2176
    assert final.usage.estimated is False
    assert final.usage.output_cost_usd == 0.0000656
    await provider.close()


async def test_stream_without_usage_counts_tokens_locally_and_says_so(upstream: Any, canary_key: str) -> None:
    upstream.sse_fixture("openai/chat_stream_no_usage.sse")
    provider = make(upstream, canary_key)
    request = GenerationRequest(prompt="Explain circuit breakers.")
    chunks = [c async for c in provider.stream(request)]
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.estimated is True
    assert usage.input_tokens == provider.count_tokens(request)
    text = "".join(c.text for c in chunks)
    from greenlang_llm.tokens import count_text_tokens

    assert usage.output_tokens == count_text_tokens(text, "gpt-4.1-mini") > 0
    assert usage.total_cost_usd > 0  # never $0 for tokens produced
    await provider.close()


async def test_plain_reply_without_usage_is_estimated_too(upstream: Any, canary_key: str) -> None:
    body = fixture_json("chat_response.json")
    del body["usage"]
    upstream.reply(body=body)
    provider = make(upstream, canary_key)
    usage = (await provider.generate(GenerationRequest(prompt="hi"))).usage
    assert usage.estimated is True
    assert usage.output_tokens > 0
    assert usage.total_cost_usd > 0
    await provider.close()


async def test_error_payload_inside_a_stream_raises_even_though_done_follows(
    upstream: Any, canary_key: str
) -> None:
    upstream.sse_fixture("openai/chat_stream_error.sse")
    provider = make(upstream, canary_key, max_retries=0)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in provider.stream(GenerationRequest(prompt="hi")):
            received.append(chunk.text)

    with pytest.raises(StreamInterruptedError, match="Internal server error") as info:
        await consume()
    assert received
    assert info.value.partial_text == "".join(received)
    assert info.value.status_code == 500
    await provider.close()


async def test_stream_cut_before_the_usage_chunk_is_an_interruption_not_a_free_answer(
    upstream: Any, canary_key: str
) -> None:
    pieces = events("chat_stream_include_usage.sse")
    upstream.reply(pieces=pieces[:-3])  # ends after the text, before the finish chunk and [DONE]
    provider = make(upstream, canary_key, max_retries=0)
    with pytest.raises(StreamInterruptedError):
        async for _ in provider.stream(GenerationRequest(prompt="hi")):
            pass
    await provider.close()


async def test_unknown_model_is_not_retried(upstream: Any, canary_key: str, fake_sleep: Any) -> None:
    upstream.json_fixture("openai/error_404_model.json", status=404)
    provider = make(upstream, canary_key, fake_sleep, model_id="gpt-4.1-mni")
    with pytest.raises(NotFoundError, match="does not exist"):
        await provider.generate(GenerationRequest(prompt="hi"))
    assert len(upstream.posts) == 1
    await provider.close()


async def test_insufficient_quota_429_is_not_retried(upstream: Any, canary_key: str, fake_sleep: Any) -> None:
    body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                      "param": None, "code": "insufficient_quota"}}
    upstream.reply(status=429, body=body)
    provider = make(upstream, canary_key, fake_sleep)
    with pytest.raises(RateLimitError) as info:
        await provider.generate(GenerationRequest(prompt="hi"))
    assert not info.value.retryable
    assert len(upstream.posts) == 1
    await provider.close()


async def test_compatible_server_with_unknown_model_is_priced_zero_with_a_warning(
    upstream: Any, canary_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = fixture_json("chat_response.json")
    body["model"] = "llama-3.1-8b-local"
    upstream.reply(body=body)
    provider = make(upstream, canary_key, model_id="llama-3.1-8b-local", provider_name="vllm-local")
    with caplog.at_level(logging.WARNING):
        response = await provider.generate(GenerationRequest(prompt="hi"))
    assert response.provider == "vllm-local"
    assert response.model_id == "llama-3.1-8b-local"
    assert response.usage.total_tokens == 2397
    assert response.usage.total_cost_usd == 0.0
    assert any("llama-3.1-8b-local" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "vllm-local" in repr(provider) or "OpenAIProvider" in repr(provider)
    await provider.close()


async def test_compatible_server_that_never_sends_done_can_be_accepted(
    upstream: Any, canary_key: str
) -> None:
    pieces = events("chat_stream_include_usage.sse")
    upstream.reply(pieces=pieces[:-1]).reply(pieces=pieces[:-1])
    strict = make(upstream, canary_key, max_retries=0)
    with pytest.raises(StreamInterruptedError, match="DONE"):
        async for _ in strict.stream(GenerationRequest(prompt="hi")):
            pass
    lenient = make(upstream, canary_key, require_done=False)
    chunks = [c async for c in lenient.stream(GenerationRequest(prompt="hi"))]
    assert chunks[-1].usage is not None
    await strict.close()
    await lenient.close()
