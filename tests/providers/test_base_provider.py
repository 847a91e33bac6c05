"""BaseLLMProvider defaults: ``catalog_id``, and a worst-case estimate priced like the bill."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import pytest

from greenlang_llm.pricing import clear_price_overrides, set_price_override
from greenlang_llm.providers import AnthropicProvider, BaseLLMProvider, FakeProvider, OpenAIProvider
from greenlang_llm.providers.base_provider import (
    GenerationRequest,
    GenerationResponse,
    ProviderHealth,
    StreamChunk,
    TokenUsage,
)
from greenlang_llm.providers.stream_guard import StreamGuard


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


# -- catalog_id: the id a provider bills under, declared on the base class ------------------------


class _Custom(BaseLLMProvider):
    """A custom provider as DESIGN allows: no ``super().__init__`` at all."""

    name: ClassVar[str] = "anthropic"

    def __init__(self) -> None:
        self.model_id = "claude-sonnet-4-6"

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        raise NotImplementedError

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        yield StreamChunk("")

    async def health_check(self) -> ProviderHealth:
        return ProviderHealth(True)


def test_catalog_id_is_the_name_by_default_even_without_super_init() -> None:
    assert _Custom().catalog_id == "anthropic"


async def test_catalog_id_of_an_openai_compatible_server_is_its_provider_name() -> None:
    plain = OpenAIProvider("gpt-4.1-mini", api_key="k")
    hosted = OpenAIProvider("llama", api_key="k", provider_name="vllm")
    assert (plain.catalog_id, hosted.catalog_id) == ("openai", "vllm")
    assert (plain.name, hosted.name) == ("openai", "openai")  # metrics and errors keep the class name
    assert AnthropicProvider("claude-sonnet-4-6", api_key="k").catalog_id == "anthropic"


def test_a_guarded_or_fake_provider_bills_as_it_says() -> None:
    hosted = OpenAIProvider("llama", api_key="k", provider_name="vllm")
    assert StreamGuard(hosted, idle_timeout=1.0).catalog_id == "vllm"
    assert FakeProvider(provider_name="my-host").catalog_id == "my-host"
    assert FakeProvider().catalog_id == "fake"
