# ruff: noqa: I001  -- the seed's code kept verbatim, import order included
"""Quick Start 4 of the original README: router and cost tracker together.

Verbatim except the import root (``llm`` -> ``greenlang_llm``) and the
``AnthropicProvider(...)`` / ``OpenAIProvider(...)`` placeholders, filled with model
ids only. Keys and base URLs come from the environment, as in Quick Start 2; the
ledger is ``greenlang_llm.db`` in the working directory (or ``GREENLANG_LLM_DB``).
"""

import asyncio
from greenlang_llm import LLMRouter, CostTracker, RoutingStrategy
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers.base_provider import GenerationRequest

async def main():
    # Initialize components
    router = LLMRouter(strategy=RoutingStrategy.LEAST_COST)
    tracker = CostTracker()

    # Setup providers
    router.register_provider("anthropic", AnthropicProvider(model_id="claude-3-sonnet-20240229"), priority=1)
    router.register_provider("openai", OpenAIProvider(model_id="gpt-3.5-turbo"), priority=2)

    # Setup budget
    tracker.set_budget("tenant-123", monthly_limit_usd=500.0)

    # Start monitoring
    await router.start_health_monitoring()

    # Generate
    request = GenerationRequest(prompt="Analyze data...", max_tokens=500)
    response = await router.generate(request)

    # Track costs
    tracker.track_usage(
        provider=response.provider,
        tenant_id="tenant-123",
        agent_id="my-agent",
        model_id=response.model_id,
        usage=response.usage
    )

    # Get reports
    budget_status = tracker.check_budget("tenant-123")
    print(f"Budget: {budget_status.percentage_used:.1f}% used")

    router_metrics = router.get_metrics()
    print(f"Requests: {router_metrics['global']['total_requests']}")

    await router.close()

asyncio.run(main())
