"""Pytest plugin: a simulator per test, started in the test's own event loop.

Load it from any ``conftest.py``, the pytest way::

    pytest_plugins = ["greenlang_llm.simulator.testing"]

(or import the two fixtures: ``from greenlang_llm.simulator.testing import
simulator, simulator_url  # noqa: F401``), then ask for ``simulator`` (a running
``Simulator``: ``.base_url``, ``.openai_base_url``, ``.faults``, ``.stats``) or
``simulator_url`` (its base URL) in an async test. Outside pytest,
``greenlang_llm.simulator.run_simulator(config)`` is the same thing as an async
context manager.

This module is for pytest to import, and only it imports pytest; nothing else in
the package imports this module. The fixtures are async, so they are declared with
pytest-asyncio when it is installed (its strict mode only runs async fixtures it
declared) and as plain pytest fixtures otherwise (what anyio's pytest plugin
runs), so the plugin loads either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from .server import Simulator

__all__ = ["simulator", "simulator_url"]


def _async_fixture() -> Callable[[Any], Any]:
    try:
        import pytest_asyncio
    except ImportError:
        return pytest.fixture
    fixture: Callable[[Any], Any] = pytest_asyncio.fixture
    return fixture


_fixture = _async_fixture()


@_fixture
async def simulator() -> AsyncIterator[Simulator]:
    """A running simulator with the default config, stopped after the test."""
    async with Simulator() as sim:
        yield sim


@_fixture
async def simulator_url(simulator: Simulator) -> str:
    """The running simulator's base URL (Anthropic clients; OpenAI ones add ``/v1``)."""
    return simulator.base_url
