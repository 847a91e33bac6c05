"""The shipped pytest plugin (``simulator/testing.py``) loads with or without pytest-asyncio."""

from __future__ import annotations

import subprocess
import sys

from greenlang_llm.simulator.server import Simulator
from greenlang_llm.simulator.testing import simulator, simulator_url  # noqa: F401


def test_plugin_imports_without_pytest_asyncio() -> None:
    code = (
        "import sys; sys.modules['pytest_asyncio'] = None\n"  # as if it were not installed
        "import greenlang_llm.simulator\n"
        "from greenlang_llm.simulator import testing\n"
        "assert callable(testing.simulator) and callable(testing.simulator_url)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_fixtures_give_a_running_simulator(simulator: Simulator, simulator_url: str) -> None:  # noqa: F811
    assert simulator_url == simulator.base_url
    assert simulator.openai_base_url == simulator_url + "/v1"
