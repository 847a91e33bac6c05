"""The seed's Quick Start 1, verbatim but for the import root, runs against the simulator.

The example starts nothing itself: like a user's script it reads
``ANTHROPIC_BASE_URL`` from the environment, which this test points at an
in-process simulator before running the file as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from greenlang_llm.providers.base_provider import GenerationRequest
from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.replies import make_reply

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart_1_single_provider.py"


async def test_quickstart_1_runs_against_the_simulator_and_prints_the_cost() -> None:
    async with Simulator() as sim:
        env = {**os.environ, "ANTHROPIC_BASE_URL": sim.base_url, "GREENLANG_LLM_LOOPBACK_ONLY": "1"}
        env.pop("ANTHROPIC_API_KEY", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        requests = sim.stats.requests
    assert proc.returncode == 0, err.decode()
    request = GenerationRequest(
        prompt="Explain carbon accounting in 2 sentences.", temperature=0.7, max_tokens=100
    )
    reply = make_reply(request, "claude-3-sonnet-20240229", sim.config.behaviour("claude-3-sonnet-20240229"))
    # claude-3-sonnet: $0.003 / $0.015 per 1K tokens (the seed's table)
    cost = reply.usage.input_tokens * 0.003 / 1000 + reply.usage.output_tokens * 0.015 / 1000
    assert out.decode().splitlines() == [f"Response: {reply.text}", f"Cost: ${cost:.4f}"]
    assert requests == 1
