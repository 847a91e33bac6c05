"""The demo's agent turn: a model asks for a tool, the tool answers, the model finishes.

What most production traffic looks like now, through the same router as the rest of the
demo: the first call offers a tool and gets a tool call back (whichever provider serves it,
in its own API's shape, read through the neutral content model), the tool runs here, and the
second call sends the tool's result under the call's id; both calls are billed to the agent
like any other. On the simulator the model always calls the tool when the user's turn names
it (``simulator/replies.py``), so the turn is the same for a seed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from .._types import GenerationRequest, GenerationResponse
from ._demo_observe import Observer

__all__ = ["AGENT_TENANT", "AgentTurn", "run_agent_turn"]

AGENT_TENANT = "umbrella"
AGENT_NAME = "field-agent"
WEATHER_TOOL = {
    "name": "get_site_weather",
    "description": "Today's weather at a site, for the carbon model's heating and cooling estimate.",
    "parameters": {
        "type": "object",
        "properties": {"site": {"type": "string", "description": "The site's city"}},
        "required": ["site"],
    },
}
QUESTION = "Use get_site_weather for our Lyon site, then say whether heating will dominate today."


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What happened: the tool call the model made, and the answer after the tool's result."""

    call: dict[str, Any]
    first: GenerationResponse
    final: GenerationResponse


def _weather(arguments: str) -> str:
    """The demo's tool: a fixed forecast for whatever site was asked (a real agent calls out)."""
    try:
        site = orjson.loads(arguments).get("site", "?")
    except (orjson.JSONDecodeError, AttributeError):
        site = "?"
    return orjson.dumps({"site": site, "celsius": 4, "sky": "overcast"}).decode()


async def run_agent_turn(router: Any, tracker: Any, observer: Observer) -> AgentTurn | None:
    """One tool-using turn through ``router``, booked in ``tracker``; None if no tool was called."""
    tools: list[Any] = [WEATHER_TOOL]
    ask = {"role": "user", "content": QUESTION}
    first = await router.generate(GenerationRequest(messages=[ask], tools=tools, max_tokens=300))
    await _book(tracker, first, "demo-agent-1")
    calls = first.tool_calls
    if not calls:
        observer.emit("info", f"agent turn: {first.provider} answered without calling the tool", "yellow")
        return None
    call = calls[0]
    observer.emit("info", f"agent turn: {first.provider} called {call['name']}({call['arguments']})", "cyan")
    result = {"type": "tool_result", "tool_call_id": call["id"], "content": _weather(call["arguments"])}
    followup = GenerationRequest(
        messages=[
            ask, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
        tools=tools,
        max_tokens=300,
    )
    final = await router.generate(followup)
    await _book(tracker, final, "demo-agent-2")
    observer.emit("info", f"agent turn: tool answered; {final.provider} replied: {final.text[:70]}…", "cyan")
    return AgentTurn(call, first, final)


async def _book(tracker: Any, response: GenerationResponse, request_id: str) -> None:
    await asyncio.to_thread(
        tracker.track_usage, provider=response.provider, tenant_id=AGENT_TENANT, agent_id=AGENT_NAME,
        model_id=response.model_id, usage=response.usage, request_id=request_id,
    )
