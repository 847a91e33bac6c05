"""Simulator fixtures: ``simulator`` (a running Simulator) and ``simulator_url``, from the public module."""

from __future__ import annotations

from greenlang_llm.simulator.testing import simulator, simulator_url

__all__ = ["simulator", "simulator_url"]
