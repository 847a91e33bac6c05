"""FakeProvider: scripted replies, failures, latency through the injected sleep, usage and streams."""

from __future__ import annotations

from decimal import Decimal

import pytest

from greenlang_llm import (
    AuthenticationError,
    GenerationRequest,
    RateLimitError,
    ServiceUnavailableError,
    StreamChunk,
    StreamInterruptedError,
)
from greenlang_llm.providers import BaseLLMProvider, FakeProvider


async def collect(provider: FakeProvider, request: GenerationRequest) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request)]


REQUEST = GenerationRequest(prompt="one two three")


async def test_script_is_played_in_order_then_the_default() -> None:
    fake = FakeProvider(script=["first", "second"], default_text="later")
    texts = [(await fake.generate(REQUEST)).text for _ in range(4)]
    assert texts == ["first", "second", "later", "later"]
    assert fake.calls == 4
    assert fake.requests == [REQUEST] * 4


async def test_scripted_errors_are_raised_with_the_provider_name() -> None:
    fake = FakeProvider(script=[ServiceUnavailableError("down"), "ok"], provider_name="backup")
    with pytest.raises(ServiceUnavailableError) as info:
        await fake.generate(REQUEST)
    assert info.value.provider == "backup"
    assert (await fake.generate(REQUEST)).text == "ok"
    assert fake.calls == 2


async def test_an_error_that_names_its_provider_keeps_it() -> None:
    fake = FakeProvider(script=[RateLimitError("slow", retry_after=2.0, provider="upstream")])
    with pytest.raises(RateLimitError) as info:
        await fake.generate(REQUEST)
    assert info.value.provider == "upstream"
    assert info.value.retry_after == 2.0


async def test_callables_see_the_request() -> None:
    fake = FakeProvider(script=[lambda r: f"echo: {r.prompt}", lambda r: AuthenticationError("no")])
    assert (await fake.generate(REQUEST)).text == "echo: one two three"
    with pytest.raises(AuthenticationError):
        await fake.generate(REQUEST)


async def test_push_appends_steps() -> None:
    fake = FakeProvider(default_text="d")
    fake.push("a", "b")
    assert [(await fake.generate(REQUEST)).text for _ in range(3)] == ["a", "b", "d"]


async def test_latency_goes_through_the_injected_sleep() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fake = FakeProvider(latency=0.25, sleep=sleep)
    response = await fake.generate(REQUEST)
    await collect(fake, REQUEST)
    assert slept == [0.25, 0.25]
    assert response.latency_ms == 250.0


async def test_usage_counts_words_and_prices_them_exactly() -> None:
    fake = FakeProvider(script=["a b c d"], price_per_1k=("0.003", "0.015"), model_id="m1")
    request = GenerationRequest(prompt="one two three", system="be brief")
    response = await fake.generate(request)
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 4, 9)
    assert usage.input_cost_usd == float(Decimal("0.003") * 5 / 1000)
    assert usage.output_cost_usd == float(Decimal("0.015") * 4 / 1000)
    assert (response.provider, response.model_id, response.finish_reason) == ("fake", "m1", "stop")


async def test_estimate_is_an_upper_bound_of_the_billed_cost() -> None:
    fake = FakeProvider(script=["short"], price_per_1k=(1, 2))
    request = GenerationRequest(prompt="one two three", system="with a system prompt", max_tokens=10)
    assert fake.count_tokens(request) == 7
    estimate = fake.estimate_cost(request)
    assert estimate == pytest.approx((7 * 1 + 10 * 2) / 1000)
    assert (await fake.generate(request)).usage.total_cost_usd <= estimate


async def test_stream_deltas_add_up_and_the_last_chunk_has_usage() -> None:
    fake = FakeProvider(script=["the quick brown fox"], provider_name="p1", model_id="m1")
    chunks = await collect(fake, REQUEST)
    assert "".join(c.text for c in chunks) == "the quick brown fox"
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert (last.text, last.finish_reason, last.provider, last.model_id) == ("", "stop", "p1", "m1")
    assert last.usage is not None
    assert last.usage.output_tokens == 4


async def test_stream_cut_keeps_the_text_already_sent() -> None:
    fake = FakeProvider(script=["the quick brown fox"], stream_fail_after=2)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in fake.stream(REQUEST):
            received.append(chunk.text)

    with pytest.raises(StreamInterruptedError) as info:
        await consume()
    assert "".join(received) == "the quick" == info.value.partial_text
    assert info.value.retryable


async def test_stream_raises_scripted_errors_before_any_chunk() -> None:
    fake = FakeProvider(script=[ServiceUnavailableError("down")])
    with pytest.raises(ServiceUnavailableError):
        await collect(fake, REQUEST)


async def test_health_follows_the_flag() -> None:
    fake = FakeProvider(latency=0.1)
    assert (await fake.health_check()).is_healthy
    fake.healthy = False
    health = await fake.health_check()
    assert not health.is_healthy
    assert health.last_error


async def test_async_context_manager_closes() -> None:
    async with FakeProvider() as fake:
        assert not fake.closed
    assert fake.closed


def test_is_a_base_provider() -> None:
    assert isinstance(FakeProvider(), BaseLLMProvider)
    assert FakeProvider.name == "fake"


async def test_base_provider_defaults_use_tokens_and_pricing() -> None:
    class Minimal(BaseLLMProvider):
        name = "openai"

        async def generate(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        async def stream(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
            yield StreamChunk(text="")

        async def health_check(self):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    provider = Minimal(model_id="gpt-4")
    request = GenerationRequest(prompt="hello world", max_tokens=100)
    tokens = provider.count_tokens(request)
    assert tokens == 3 + 1 + 2 + 3  # per-message 3, "user", "hello world", reply priming
    assert provider.estimate_cost(request) == pytest.approx((tokens * 30 + 100 * 60) / 1_000_000)
    async with provider as same:
        assert same is provider
