"""Library: a streamed call costs exactly what the same call costs unstreamed, for both APIs.

Twenty request shapes (cache reads and writes, length cuts, multi-turn, unicode, ...) through the real
providers against the simulator: the final chunk's ``TokenUsage`` — every token count and every cost
field — equals the plain call's, and so does the text. An OpenAI-compatible server that ignores
``stream_options.include_usage`` still yields a priced usage, counted locally and marked estimated.
"""

from __future__ import annotations

import pytest
from streams_support import GPT, SHAPES, Shape, collect, provider_for, running_sim, usage_dropping_proxy

from greenlang_llm._types import GenerationRequest
from greenlang_llm.providers.openai_provider import OpenAIProvider


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_streamed_usage_equals_plain_usage_for_twenty_request_shapes(api: str) -> None:
    async with running_sim() as sim:
        providers = {}
        mismatches = []
        for shape in SHAPES:
            model, request = shape.build(api)
            provider = providers.get(model) or providers.setdefault(model, provider_for(sim, model))
            plain = await provider.generate(request)
            chunks = await collect(provider.stream(request))
            final = chunks[-1]
            assert final.usage is not None, shape.name
            text = "".join(c.text for c in chunks)
            if (final.usage, text, final.finish_reason) != (plain.usage, plain.text, plain.finish_reason):
                mismatches.append((shape.name, plain.usage, final.usage))
            assert plain.usage.total_cost_usd > 0, shape.name
            assert not final.usage.estimated, shape.name
        for provider in providers.values():
            await provider.close()
    assert mismatches == []


async def test_shapes_with_a_cached_prefix_carry_cache_tokens_in_both_modes() -> None:
    cached: list[Shape] = [s for s in SHAPES if s.name.startswith("cached")]
    async with running_sim() as sim:
        for api in ("anthropic", "openai"):
            model, request = cached[0].build(api)
            provider = provider_for(sim, model)
            plain = await provider.generate(request)
            final = (await collect(provider.stream(request)))[-1]
            assert final.usage is not None
            assert final.usage.cache_read_tokens == plain.usage.cache_read_tokens > 0
            assert final.usage.cache_write_tokens == plain.usage.cache_write_tokens
            assert final.usage.input_tokens > final.usage.cache_read_tokens  # cache is a subset of input
            await provider.close()


async def test_a_server_ignoring_include_usage_gives_an_estimated_priced_usage_never_zero() -> None:
    request = GenerationRequest(prompt="Hello there, how are you today?")
    async with running_sim() as sim, usage_dropping_proxy(sim.openai_base_url) as proxy_url:
        provider = OpenAIProvider(GPT, api_key="sk-test-canary", base_url=proxy_url, max_retries=0)
        chunks = await collect(provider.stream(request))
        usage = chunks[-1].usage
        reported = provider_for(sim, GPT)
        exact = (await reported.generate(request)).usage
        await provider.close()
        await reported.close()
    assert usage is not None
    assert usage.estimated
    assert usage.output_tokens > 0
    assert usage.input_tokens > 0
    assert usage.total_cost_usd > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # a local count, not the server's: close to it, never zero
    assert abs(usage.output_tokens - exact.output_tokens) <= exact.output_tokens
