"""A local, wire-compatible Anthropic + OpenAI upstream with fault injection.

Nothing in greenlang-llm needs a real API key to run, test or benchmark: the
official SDKs, our providers and the gateway talk to this server by changing
only their base URL. See docs/simulator.md for the reply/usage function, the
config file, the fault kinds and the ``x-sim-*`` headers.

Importing this package does not import starlette or uvicorn; the names below
load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .app import SimulatorApp
    from .config import ModelBehaviour, SimulatorConfig
    from .faults import FaultRule
    from .server import Simulator, run_simulator

__all__ = ["FaultRule", "ModelBehaviour", "Simulator", "SimulatorApp", "SimulatorConfig", "run_simulator"]

__getattr__ = lazy_getattr(
    __name__,
    {
        "SimulatorApp": ".app",
        "ModelBehaviour": ".config",
        "SimulatorConfig": ".config",
        "FaultRule": ".faults",
        "Simulator": ".server",
        "run_simulator": ".server",
    },
)
