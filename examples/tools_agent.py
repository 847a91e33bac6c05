"""An agent turn with a tool, through the router: the model asks, the tool answers, the model finishes.

The same code works whichever provider answers (Claude or GPT): the request and the reply
are in the neutral content model (``greenlang_llm.content``), and each provider's API is
spoken by the library. Keys and base URLs come from ANTHROPIC_API_KEY / OPENAI_API_KEY and
ANTHROPIC_BASE_URL / OPENAI_BASE_URL (point them at ``greenlang-llm simulate`` to run it
without real keys; the simulator calls a tool whose name the user's turn mentions).
"""

import asyncio
import json

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "celsius": 18, "sky": "clear"})


async def main() -> None:
    router = LLMRouter()
    router.register_provider("claude", AnthropicProvider(model_id="claude-sonnet-4-6"), priority=1)
    router.register_provider("gpt", OpenAIProvider(model_id="gpt-4.1-mini"), priority=2)
    question = {"role": "user", "content": "Call get_weather for Paris, then tell me what to wear."}

    first = await router.generate(GenerationRequest(messages=[question], tools=[WEATHER], max_tokens=300))
    print(f"{first.provider} stopped for {first.finish_reason}")
    results = []
    for call in first.tool_calls:
        arguments = json.loads(call["arguments"])
        print(f"tool call {call['name']}({arguments})")
        result = get_weather(**arguments)
        results.append({"type": "tool_result", "tool_call_id": call["id"], "content": result})

    answered = {"role": "assistant", "content": first.content}  # the tool calls, ids kept
    final = await router.generate(GenerationRequest(
        messages=[question, answered, {"role": "user", "content": results}], tools=[WEATHER], max_tokens=300,
    ))
    print(f"{final.provider} answered: {final.text}")
    print(f"cost of the turn: ${first.usage.total_cost_usd + final.usage.total_cost_usd:.6f}")
    await router.close()


if __name__ == "__main__":
    asyncio.run(main())
