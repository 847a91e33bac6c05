"""Context-length fallbacks through the gateway (issue #19, part 4), with both official SDKs.

The simulator rejects a prompt longer than a model's window with the API's own 400
(context length); the gateway knows no window for these made-up models (unknown). A route's
own candidates of unknown window are tried, then its ``context_window_fallbacks`` in order,
and no model is ever sent the same prompt twice: the simulator counts every request per model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.config import ModelBehaviour

LONG = "the river runs to the sea " * 60  # ~360 tokens: too long for "small" (100)


def config(sim: Simulator) -> dict[str, Any]:
    def provider(name: str, api: str, model: str) -> dict[str, Any]:
        base = sim.base_url if api == "anthropic" else sim.openai_base_url
        return {"name": name, "type": api, "model_id": model, "base_url": base, "api_key_env": "SIM_KEY",
                "max_retries": 2, "timeout": 5.0}

    return {
        "server": {"database_url": "sqlite:///:memory:"},
        "providers": [provider("small-o", "openai", "small"), provider("small-a", "anthropic", "small"),
                      provider("mid", "openai", "mid"), provider("big", "openai", "big")],
        "routes": [
            # its own fallback of unknown window answers
            {"name": "inside", "providers": ["small-o", "big"]},
            # own candidates exhausted: the next route (which lists the refusing model again: skipped)
            {"name": "short", "providers": ["small-o", "mid"], "context_window_fallbacks": ["wide"]},
            {"name": "wide", "providers": ["small-o", "mid", "big"]},
            # a provider named directly
            {"name": "direct", "providers": ["small-a"], "context_window_fallbacks": ["mid", "big"]},
            # no fallback fits: the caller gets the context-length error
            {"name": "nowhere", "providers": ["small-o"], "context_window_fallbacks": ["mid"]},
        ],
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "ctx"}],
        "budgets": [],
    }


@dataclass
class Gateway:
    sim: Simulator
    url: str

    def requests(self) -> dict[str, int]:
        return {m: int(self.sim.stats.by_model.get(m, 0)) for m in ("small", "mid", "big")}


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    models = {"small": ModelBehaviour(context_window=100), "mid": ModelBehaviour(context_window=200)}
    async with Simulator(SimulatorConfig(seed=1, models=models)) as sim:
        app, _ = make_app(config(sim), providers={}, env=SIM_ENV)
        async with serve(app) as url:
            yield Gateway(sim, url)


def ask(url: str, api: str, route: str, stream: bool) -> str:
    """The provider that answered (``x-greenlang-provider``), through the official SDK of ``api``."""
    if api == "openai":
        oc = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0, timeout=20)
        messages: Any = [{"role": "user", "content": LONG}]
        try:
            if not stream:
                raw = oc.chat.completions.with_raw_response.create(
                    model=route, messages=messages, max_tokens=10)
                assert raw.parse().choices[0].message.content
                return raw.headers["x-greenlang-provider"]
            with oc.chat.completions.with_streaming_response.create(
                    model=route, messages=messages, max_tokens=10, stream=True) as response:
                assert "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
                return response.headers["x-greenlang-provider"]
        finally:
            oc.close()
    ac = anthropic.Anthropic(base_url=url, api_key=ACME_KEY, max_retries=0, timeout=20)
    try:
        if not stream:
            raw_a = ac.messages.with_raw_response.create(
                model=route, max_tokens=10, messages=[{"role": "user", "content": LONG}])
            assert raw_a.parse().content
            return raw_a.headers["x-greenlang-provider"]
        prompt: Any = [{"role": "user", "content": LONG}]
        with ac.messages.stream(model=route, max_tokens=10, messages=prompt) as s:
            assert "".join(s.text_stream)
            return s.response.headers["x-greenlang-provider"]
    finally:
        ac.close()


APIS = pytest.mark.parametrize("api", ["openai", "anthropic"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@APIS
@STREAM
async def test_a_fallback_of_unknown_window_answers(gateway: Gateway, api: str, stream: bool) -> None:
    assert await asyncio.to_thread(ask, gateway.url, api, "inside", stream) == "big"
    assert gateway.requests() == {"small": 1, "mid": 0, "big": 1}


@APIS
@STREAM
async def test_the_routes_fallback_route_never_resends_to_a_model_that_refused(
        gateway: Gateway, api: str, stream: bool) -> None:
    assert await asyncio.to_thread(ask, gateway.url, api, "short", stream) == "big"
    assert gateway.requests() == {"small": 1, "mid": 1, "big": 1}  # "wide" skipped small and mid


@APIS
async def test_providers_named_as_fallbacks_are_tried_in_order(gateway: Gateway, api: str) -> None:
    assert await asyncio.to_thread(ask, gateway.url, api, "direct", False) == "big"
    assert gateway.requests() == {"small": 1, "mid": 1, "big": 1}


async def test_when_no_fallback_fits_the_caller_gets_the_context_length_error(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await asyncio.to_thread(ask, gateway.url, "openai", "nowhere", False)
    assert info.value.code == "context_length_exceeded"
    assert gateway.requests() == {"small": 1, "mid": 1, "big": 0}
