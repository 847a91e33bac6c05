"""Per-key limits and provider breakers are one across replicas (two gateway processes, one Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from scaleout_support import LIMITED_KEY, Replica, chat, make_replicas, start_all, stop_all

from greenlang_llm.simulator import Simulator

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


async def test_per_key_rpm_is_held_across_replicas(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str
) -> None:
    url, _ = pg_schema
    async with Simulator() as sim:
        replicas = make_replicas(
            2, tmp_path, database_url=url, prefix=redis_prefix, openai_url=sim.openai_base_url, rpm=10
        )
        try:
            await start_all(replicas)
            async with aiohttp.ClientSession() as session:
                results = await asyncio.gather(
                    *(chat(session, replicas[i % 2], key=LIMITED_KEY, max_tokens=16) for i in range(40))
                )
        finally:
            stop_all(replicas)
    ok = [i for i, (status, _, _) in enumerate(results) if status == 200]
    limited = [body for status, body, _ in results if status == 429]
    print(f"\nrpm=10 over two replicas: {len(ok)} admitted of 40 ({sorted(i % 2 for i in ok)})")
    assert len(ok) + len(limited) == 40
    assert 10 <= len(ok) <= 11  # one limit, not one per replica (2 x 10); within one request of it
    assert all(b["error"]["code"] == "rate_limit_exceeded" for b in limited), limited[:1]


async def test_a_provider_failing_behind_one_replica_opens_the_breaker_for_the_other(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str
) -> None:
    url, _ = pg_schema
    async with Simulator() as sim:
        common = {"database_url": url, "redis_url": "redis://127.0.0.1:6379/0", "prefix": redis_prefix}
        broken = Replica("broken", tmp_path, openai_url="http://127.0.0.1:9/v1", **common)  # nothing listens
        healthy = Replica("healthy", tmp_path, openai_url=sim.openai_base_url, **common)
        try:
            await start_all([broken, healthy])
            async with aiohttp.ClientSession() as session:
                assert (await chat(session, healthy, max_tokens=16))[0] == 200
                for _ in range(5):  # the router's breaker threshold
                    status, _, _ = await chat(session, broken, max_tokens=16)
                    assert status >= 500
                before = sim.stats.requests
                await asyncio.sleep(0.3)  # > the breaker mirror's sync interval (0.1 s)
                status, body, _ = await chat(session, healthy, max_tokens=16)
                async with session.get(f"{healthy.url}/metrics") as resp:
                    metrics = await resp.text()
        finally:
            stop_all([broken, healthy])
    assert status == 503, body  # refused by the shared breaker ...
    assert sim.stats.requests == before  # ... without calling the (healthy) upstream
    assert 'greenlang_gateway_circuit_breaker_state{route="chat",provider="gpt"} 2' in metrics
