"""Running the simulator: in-process runner and fixture, and the ``greenlang-llm simulate`` subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from greenlang_llm.simulator import Simulator, run_simulator

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hello there"}]}
HEADERS = {"authorization": "Bearer sk-test-canary"}


async def test_run_simulator_yields_a_loopback_url_that_serves_until_the_block_ends() -> None:
    async with run_simulator() as url:
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{url}/v1/models") as response:
            assert response.status == 200
    async with aiohttp.ClientSession() as http:
        try:
            await http.get(f"{url}/v1/models")
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("server still answering after the block")


async def test_fixture_gives_a_running_simulator(simulator: Simulator, simulator_url: str) -> None:
    assert simulator_url == simulator.base_url
    assert simulator.openai_base_url == simulator.base_url + "/v1"


async def test_two_simulators_get_different_ports() -> None:
    async with Simulator() as one, Simulator() as two:
        assert one.port != two.port


async def test_cli_prints_its_url_and_serves(tmp_path: Path) -> None:
    config = tmp_path / "faults.toml"
    config.write_text('seed = 1\n[[faults]]\nkind = "529"\npath = "/v1/messages"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "greenlang_llm",
        "simulate",
        "--port",
        "0",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/chat/completions", json=BODY, headers=HEADERS) as response:
                assert response.status == 200
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
            body = {**BODY, "max_tokens": 3}
            async with http.post(f"{url}/v1/messages", json=body, headers=headers) as response:
                assert response.status == 529
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)


async def test_cli_bad_config_is_exit_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[faults]]\nkind = "explode"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "greenlang_llm",
        "simulate",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().count("\n") == 1
    assert "explode" in err.decode()
