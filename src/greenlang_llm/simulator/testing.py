"""Pytest helpers: a simulator per test, started in the test's own event loop.

Use from any conftest.py::

    from greenlang_llm.simulator.testing import simulator, simulator_url  # noqa: F401

then ask for ``simulator`` (a running ``Simulator``: ``.base_url``,
``.openai_base_url``, ``.faults``, ``.stats``) or ``simulator_url`` (its base URL)
in an async test. Outside pytest, ``run_simulator(config)`` is the same thing as
an async context manager.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .config import SimulatorConfig
from .server import Simulator, run_simulator

__all__ = ["Simulator", "SimulatorConfig", "run_simulator", "simulator", "simulator_url"]


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator() as sim:
        yield sim


@pytest_asyncio.fixture
async def simulator_url(simulator: Simulator) -> str:
    return simulator.base_url
