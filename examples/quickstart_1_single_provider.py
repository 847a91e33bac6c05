# ruff: noqa: I001  -- the seed's code kept verbatim, import order included
"""Quick Start 1 of the original README: one provider, one call, its cost.

Verbatim except the import root (``llm`` -> ``greenlang_llm``). The base URL comes
from ANTHROPIC_BASE_URL: point it at ``greenlang-llm simulate`` (which accepts any
key, so ``"your-api-key"`` works) to run this without a real key.
"""

import asyncio
from greenlang_llm.providers import AnthropicProvider
from greenlang_llm.providers.base_provider import GenerationRequest

async def main():
    # Initialize provider
    provider = AnthropicProvider(
        model_id="claude-3-sonnet-20240229",
        api_key="your-api-key"
    )

    # Create request
    request = GenerationRequest(
        prompt="Explain carbon accounting in 2 sentences.",
        temperature=0.7,
        max_tokens=100
    )

    # Generate
    response = await provider.generate(request)
    print(f"Response: {response.text}")
    print(f"Cost: ${response.usage.total_cost_usd:.4f}")

    await provider.close()

asyncio.run(main())
