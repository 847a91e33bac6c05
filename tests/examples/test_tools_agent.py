"""examples/tools_agent.py: a tool-using agent turn through the router, against the simulator."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from greenlang_llm.simulator.testing import Simulator, simulator  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_the_agent_calls_the_tool_and_answers_with_its_result(
    simulator: Simulator, tmp_path: Path,  # noqa: F811
) -> None:
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": simulator.anthropic_base_url,
        "OPENAI_BASE_URL": simulator.openai_base_url,
        "ANTHROPIC_API_KEY": "sk-test-canary",
        "OPENAI_API_KEY": "sk-test-canary",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "tools_agent.py"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "claude stopped for tool_calls"
    assert lines[1].startswith("tool call get_weather({'city': '")
    # the simulator echoes the tool's result: it reached Claude under the call's id
    assert lines[2].startswith("claude answered: Tool toolu_sim")
    assert '"celsius": 18' in lines[2]
    assert lines[3].startswith("cost of the turn: $")
    assert "sk-test-canary" not in out.decode() + err.decode()
