"""Memory: no per-request leak in the gateway process.

``greenlang-llm serve`` in a subprocess serves a mix (both APIs, plain and streamed, a few
refusals) at concurrency 20; its VmRSS after N requests must be within 10% of its VmRSS after
N/5 (CI: 1,000 vs 5,000; soak: 2,000 vs 20,000 as in the issue). Anything kept per request
(request ids, metrics label sets, reservations, ledger queue entries) would grow with N.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from reliability_support import SEED, SOAK, TENANT_A_KEY, GatewayProcess, gateway_config, read_rss_kib, scaled

from greenlang_llm.simulator import Simulator, SimulatorConfig

CONCURRENCY = 20


async def _serve(session: aiohttp.ClientSession, url: str, start: int, stop: int) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        stream = i % 4 == 0
        body: dict[str, Any] = {"model": "default", "max_tokens": 16, "stream": stream,
                                "messages": [{"role": "user", "content": f"memory {i}"}]}
        if i % 2:
            path, headers = "/v1/chat/completions", {"authorization": f"Bearer {TENANT_A_KEY}"}
        else:
            path, headers = "/v1/messages", {"x-api-key": TENANT_A_KEY, "anthropic-version": "2023-06-01"}
        if i % 50 == 0:
            headers = {"authorization": "Bearer sk-unknown"}  # a refusal now and then
        async with sem, session.post(url + path, json=body, headers=headers) as resp:
            await resp.read()
            assert resp.status == (401 if i % 50 == 0 else 200)

    await asyncio.gather(*(one(i) for i in range(start, stop)))


@pytest.mark.slow
async def test_gateway_rss_does_not_grow_with_the_number_of_requests(tmp_path: Path) -> None:
    small, large = (2_000, 20_000) if SOAK else (1_000, scaled(5_000, 20_000))
    async with Simulator(SimulatorConfig(seed=SEED)) as sim:
        config = gateway_config(sim.anthropic_base_url, sim.openai_base_url, timeout=10.0,
                                database_url=f"sqlite:///{tmp_path}/ledger.db")
        gw = GatewayProcess(config, tmp_path)
        gw.start()
        try:
            connector = aiohttp.TCPConnector(limit=CONCURRENCY)
            async with aiohttp.ClientSession(connector=connector) as session:
                await _serve(session, gw.url, 0, small)
                await asyncio.sleep(0.5)  # let the ledger flush settle
                after_small = read_rss_kib(gw.pid)
                await _serve(session, gw.url, small, large)
                await asyncio.sleep(0.5)
                after_large = read_rss_kib(gw.pid)
        finally:
            gw.stop()
    growth = after_large / after_small - 1
    print(f"\nmemory: RSS after {small} requests {after_small} KiB, after {large} {after_large} KiB "
          f"({growth:+.1%})")
    assert after_large <= after_small * 1.10
