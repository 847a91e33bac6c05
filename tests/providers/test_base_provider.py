"""BaseLLMProvider defaults: the worst-case estimate prices the same catalog entry as the bill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from greenlang_llm.pricing import clear_price_overrides, set_price_override
from greenlang_llm.providers import OpenAIProvider
from greenlang_llm.providers.base_provider import GenerationRequest, TokenUsage


@pytest.fixture
def _overrides() -> Iterator[None]:
    clear_price_overrides()
    yield
    clear_price_overrides()


@pytest.mark.usefixtures("_overrides")
async def test_estimate_of_an_openai_compatible_server_uses_its_provider_name() -> None:
    # Only "my-host" has this price; under "openai" the catalog's gpt-4.1-mini rate applies.
    set_price_override("gpt-4.1-mini", provider="my-host", input_per_mtok=7, output_per_mtok=11)
    provider = OpenAIProvider(
        "gpt-4.1-mini", api_key="k", base_url="http://127.0.0.1:9/v1", provider_name="my-host"
    )
    request = GenerationRequest(prompt="price me", max_tokens=100)
    prompt = provider.count_tokens(request)
    billed = provider._usage(TokenUsage(prompt, 100, prompt + 100), "", request)
    assert billed.total_cost_usd == (prompt * 7 + 100 * 11) / 1_000_000
    assert provider.estimate_cost(request) == billed.total_cost_usd
    await provider.close()


@pytest.mark.usefixtures("_overrides")
async def test_estimate_of_plain_openai_is_unchanged() -> None:
    set_price_override("gpt-4.1-mini", provider="openai", input_per_mtok=2, output_per_mtok=3)
    provider = OpenAIProvider("gpt-4.1-mini", api_key="k", base_url="http://127.0.0.1:9/v1")
    request = GenerationRequest(prompt="price me", max_tokens=10)
    prompt = provider.count_tokens(request)
    assert provider.estimate_cost(request) == (prompt * 2 + 10 * 3) / 1_000_000
    await provider.close()
