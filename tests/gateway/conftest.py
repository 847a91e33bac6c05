"""Gateway fixtures: ``stack`` = simulator + gateway (real providers) on loopback ports.

Also puts this directory on ``sys.path`` so tests can import ``gateway_support``
(the shared helpers) under pytest's importlib mode.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from gateway_support import SIM_ENV, make_app, serve, sim_config_dict  # noqa: E402

from greenlang_llm.gateway.service import GatewayService  # noqa: E402
from greenlang_llm.simulator.server import Simulator  # noqa: E402


@dataclass
class Stack:
    sim: Simulator
    service: GatewayService
    url: str


@pytest_asyncio.fixture
async def make_stack() -> AsyncIterator[Callable[..., Any]]:
    """Factory: ``async with make_stack(**config_changes) as stack`` (several per test allowed)."""
    import contextlib

    @contextlib.asynccontextmanager
    async def build(**changes: Any) -> AsyncIterator[Stack]:
        async with Simulator() as sim:
            data = sim_config_dict(sim.anthropic_base_url, sim.openai_base_url, **changes)
            app, service = make_app(data, providers={}, env=SIM_ENV)
            async with serve(app) as url:
                yield Stack(sim, service, url)

    yield build


@pytest_asyncio.fixture
async def stack(make_stack: Callable[..., Any]) -> AsyncIterator[Stack]:
    async with make_stack() as s:
        yield s
