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
