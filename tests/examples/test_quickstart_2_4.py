"""The seed's Quick Start 2 and 4, run verbatim as subprocesses against the simulator."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from greenlang_llm.simulator.testing import Simulator, simulator  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _run(script: str, sim: Simulator, cwd: Path) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": sim.anthropic_base_url,
        "OPENAI_BASE_URL": sim.openai_base_url,
        "ANTHROPIC_API_KEY": "sk-test-canary",
        "OPENAI_API_KEY": "sk-test-canary",
        "GREENLANG_LLM_DB": str(cwd / "ledger.db"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / script), cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_quickstart_2_routes_least_cost_and_prints_metrics(
    simulator: Simulator, tmp_path: Path,  # noqa: F811
) -> None:
    code, out, err = await _run("quickstart_2_failover.py", simulator, tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Provider used: openai"  # gpt-3.5-turbo is the cheaper of the two
    assert lines[1].startswith("Cost: $")
    assert lines[2].startswith("Total cost: $")
    assert lines[3] == "Failovers: 0"
    assert "sk-test-canary" not in out + err


async def test_quickstart_4_tracks_the_routed_call_in_the_ledger(
    simulator: Simulator, tmp_path: Path,  # noqa: F811
) -> None:
    code, out, err = await _run("quickstart_4_integration.py", simulator, tmp_path)
    assert code == 0, err
    assert out.splitlines() == ["Budget: 0.0% used", "Requests: 1"]
    assert (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("script", ["quickstart_2_failover.py", "quickstart_4_integration.py"])
def test_examples_differ_from_the_seed_only_in_the_import_root(script: str) -> None:
    source = (EXAMPLES / script).read_text()
    assert "from llm" not in source
    assert "import asyncio\nfrom greenlang_llm import LLMRouter" in source
    assert source.rstrip().endswith("asyncio.run(main())")
