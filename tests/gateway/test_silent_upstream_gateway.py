"""A silent upstream fails over after one timeout, through the gateway (issue #19, part 1).

The gateway runs on a loopback port in front of the simulator with the usual settings (each
provider retries twice on its own) but small timeouts; the clients are the official ``openai``
and ``anthropic`` SDKs, plain and streamed. The primary accepts and stays silent (``slow``), or
for streams sends its 200 and then nothing (``slow_first_token``); the answer comes from the
fallback after one timeout, well within two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule

TIMEOUT = 0.5


def config(sim: Simulator, guarded: bool) -> dict[str, Any]:
    def provider(name: str, api: str, model: str) -> dict[str, Any]:
        base = sim.base_url if api == "anthropic" else sim.openai_base_url
        return {"name": name, "type": api, "model_id": model, "base_url": base, "api_key_env": "SIM_KEY",
                "max_retries": 2, "base_delay": 0.01, "max_delay": 0.01, "timeout": TIMEOUT,
                "first_token_timeout": TIMEOUT}

    route: dict[str, Any] = {"name": "pair", "providers": ["claude", "gpt"]}
    if guarded:  # the route's own stream limits wrap each provider in a StreamGuard
        route["idle_timeout"] = 5.0
    return {
        "server": {"database_url": "sqlite:///:memory:"},
        "providers": [provider("claude", "anthropic", "primary"), provider("gpt", "openai", "fallback")],
        "routes": [route],
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "silent"}],
        "budgets": [],
    }


@dataclass
class Gateway:
    sim: Simulator
    url: str


@pytest_asyncio.fixture(params=[False, True], ids=["plain_route", "guarded_route"])
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    async with Simulator(SimulatorConfig(seed=1)) as sim:
        app, _ = make_app(config(sim, request.param), providers={}, env=SIM_ENV)
        async with serve(app) as url:
            yield Gateway(sim, url)


def ask(url: str, api: str, stream: bool) -> tuple[str, str]:
    """(answer text, x-greenlang-provider) through the official SDK of ``api``."""
    if api == "openai":
        oc = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0, timeout=20)
        messages: Any = [{"role": "user", "content": "Which way does the river run?"}]
        try:
            if not stream:
                raw = oc.chat.completions.with_raw_response.create(
                    model="pair", messages=messages, max_tokens=20)
                reply = raw.parse()
                return reply.choices[0].message.content or "", raw.headers["x-greenlang-provider"]
            with oc.chat.completions.with_streaming_response.create(
                    model="pair", messages=messages, max_tokens=20, stream=True) as response:
                parts = [c.choices[0].delta.content or "" for c in response.parse() if c.choices]
                return "".join(parts), response.headers["x-greenlang-provider"]
        finally:
            oc.close()
    ac = anthropic.Anthropic(base_url=url, api_key=ACME_KEY, max_retries=0, timeout=20)
    try:
        if not stream:
            raw_a = ac.messages.with_raw_response.create(
                model="pair", max_tokens=20, messages=[{"role": "user", "content": "Which way?"}])
            message = raw_a.parse()
            text = "".join(b.text for b in message.content if b.type == "text")
            return text, raw_a.headers["x-greenlang-provider"]
        with ac.messages.stream(model="pair", max_tokens=20,
                                messages=[{"role": "user", "content": "Which way?"}]) as s:
            text = "".join(s.text_stream)
            return text, s.response.headers["x-greenlang-provider"]
    finally:
        ac.close()


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize(("kind", "stream"), [("slow", False), ("slow", True), ("slow_first_token", True)])
async def test_a_silent_primary_fails_over_after_one_timeout(
        gateway: Gateway, api: str, kind: str, stream: bool) -> None:
    gateway.sim.faults.add(FaultRule(kind, model="primary", delay=20))
    started = time.monotonic()
    text, provider = await asyncio.to_thread(ask, gateway.url, api, stream)
    elapsed = time.monotonic() - started
    assert text
    assert provider == "gpt"
    assert gateway.sim.stats.faults[kind] == 1  # one silent request, not 1 + max_retries
    assert TIMEOUT <= elapsed < 2 * TIMEOUT
