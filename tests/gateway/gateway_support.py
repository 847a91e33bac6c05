"""Gateway test helpers: a config builder, an app over FakeProviders, and a live loopback server.

Imported by the tests as ``gateway_support`` (conftest.py puts this directory on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette

from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.gateway.app import create_app
from greenlang_llm.gateway.config import parse_config
from greenlang_llm.gateway.service import GatewayService
from greenlang_llm.providers.base_provider import BaseLLMProvider
from greenlang_llm.providers.fake import FakeProvider

ACME_KEY = "sk-gl-acme-0123456789"
BETA_KEY = "sk-gl-beta-0123456789"
ADMIN_KEY = "sk-gl-admin-0123456789"
ENV = {"ACME_KEY": ACME_KEY, "BETA_KEY": BETA_KEY, "GREENLANG_ADMIN_KEY": ADMIN_KEY}

BASE: dict[str, Any] = {
    "server": {"database_url": "sqlite:///:memory:"},
    "providers": [
        {
            "name": "claude",
            "type": "anthropic",
            "model_id": "claude-3-5-haiku-20241022",
            "priority": 1,
            "max_retries": 0,
        },
        {"name": "gpt", "type": "openai", "model_id": "gpt-4o-mini", "priority": 2, "max_retries": 0},
    ],
    "routes": [
        {"name": "default", "strategy": "priority", "providers": ["claude", "gpt"]},
        {"name": "cheap", "strategy": "priority", "providers": ["gpt"]},
    ],
    "keys": [
        {"key_env": "ACME_KEY", "tenant": "acme", "agent": "web"},
        {"key_env": "BETA_KEY", "tenant": "beta", "agent": "batch", "routes": ["cheap"]},
    ],
    "budgets": [],
}


def config_dict(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def fakes(**kw: Any) -> dict[str, FakeProvider]:
    """FakeProviders standing in for the config's two providers, with seed-style prices."""
    return {
        "claude": FakeProvider("claude-3-5-haiku-20241022", price_per_1k=("0.0008", "0.004"), **kw),
        "gpt": FakeProvider("gpt-4o-mini", price_per_1k=("0.00015", "0.0006"), **kw),
    }


def make_app(
    data: Mapping[str, Any] | None = None,
    providers: Mapping[str, BaseLLMProvider] | None = None,
    env: Mapping[str, str] = ENV,
) -> tuple[Starlette, GatewayService]:
    config = parse_config(data or config_dict(), env)
    tracker = CostTracker(storage="sqlite:///:memory:")
    app = create_app(config, providers=providers if providers is not None else fakes(), tracker=tracker)
    return app, app.state.service


def auth(key: str = ACME_KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def asgi_client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    """In-process client (no sockets); closes the service at the end like the lifespan would."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://gateway") as client:
        try:
            yield client
        finally:
            await app.state.service.close()


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL, then shuts it down."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="asyncio", lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    app.state.uvicorn_server = server  # lets a test trigger shutdown while requests are in flight
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


SIM_KEY = "sk-test-canary-5f2e9d"
"""The provider key the gateway sends upstream: a canary that must never show up in logs or answers."""

CLAUDE = "claude-3-5-haiku-20241022"
GPT = "gpt-4o-mini"


def sim_config_dict(anthropic_url: str, openai_url: str, **changes: Any) -> dict[str, Any]:
    """The base config with real providers pointed at a simulator; provider key from ``SIM_KEY``."""
    data = config_dict(**changes)
    data["providers"][0].update(base_url=anthropic_url, api_key_env="SIM_KEY")
    data["providers"][1].update(base_url=openai_url, api_key_env="SIM_KEY")
    return data


SIM_ENV = {**ENV, "SIM_KEY": SIM_KEY}
