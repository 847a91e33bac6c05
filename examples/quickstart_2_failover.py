# ruff: noqa: I001  -- the seed's code kept verbatim, import order included
"""Quick Start 2 of the original README: multi-provider routing with automatic failover.

Verbatim except the import root (``llm`` -> ``greenlang_llm``). Keys and base URLs
come from ANTHROPIC_API_KEY / OPENAI_API_KEY and ANTHROPIC_BASE_URL / OPENAI_BASE_URL
(point the base URLs at ``greenlang-llm simulate`` to run it without real keys).
"""

import asyncio
from greenlang_llm import LLMRouter, RoutingStrategy
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers.base_provider import GenerationRequest

async def main():
    # Initialize router with least-cost strategy
    router = LLMRouter(
        strategy=RoutingStrategy.LEAST_COST,
        enable_circuit_breaker=True
    )

    # Register providers (priority 1 = highest)
    anthropic = AnthropicProvider(model_id="claude-3-sonnet-20240229")
    router.register_provider("anthropic", anthropic, priority=1)

    openai = OpenAIProvider(model_id="gpt-3.5-turbo")
    router.register_provider("openai", openai, priority=2)

    # Start health monitoring
    await router.start_health_monitoring()

    # Generate with automatic provider selection
    request = GenerationRequest(
        prompt="Analyze ESG data...",
        max_tokens=500
    )

    response = await router.generate(request)
    print(f"Provider used: {response.provider}")
    print(f"Cost: ${response.usage.total_cost_usd:.4f}")

    # Get metrics
    metrics = router.get_metrics()
    print(f"Total cost: ${metrics['global']['total_cost_usd']:.4f}")
    print(f"Failovers: {metrics['global']['failover_count']}")

    await router.close()

asyncio.run(main())
