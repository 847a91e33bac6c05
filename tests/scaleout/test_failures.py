"""Failures of a shared deployment: a replica killed holding reservations, Redis losing its data.

- ``kill -9`` of a replica with requests in flight: its holds stay (the budget refuses others)
  until the reservation TTL, then free; the surviving replica carries on.
- Redis emptied mid-run (``FLUSHDB`` of a database used only by this test — exactly what a
  ``FLUSHALL`` does to our keys, without touching anyone else's; ``SCALEOUT_ALLOW_FLUSHALL=1``
  runs a real ``FLUSHALL``): reservations are refused
  while the replicas rebuild month-to-date from the PostgreSQL ledger, open holds are put
  back, and the budget is never overshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scaleout_support import REDIS_BASE, chat, ledger_rows, make_replicas, start_all, stop_all

from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

FLUSHALL = os.environ.get("SCALEOUT_ALLOW_FLUSHALL") == "1"
"""Set on a host whose Redis nobody else uses to empty it with FLUSHALL instead of FLUSHDB."""
FULL = ModelBehaviour(reply_tokens=100_000)  # every reply runs to max_tokens: cost = reservation


async def test_a_killed_replicas_reservations_are_released_after_the_ttl(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str, redis_db: Any
) -> None:
    url, schema = pg_schema
    ttl = 3.0
    sim_config = SimulatorConfig(
        defaults=FULL, models={"gpt-4o-2024-08-06": ModelBehaviour(latency_ms=60_000)}
    )
    async with Simulator(sim_config) as sim:
        doomed, survivor = make_replicas(
            2, tmp_path, database_url=url, prefix=redis_prefix, openai_url=sim.openai_base_url,
            budget_usd=0.10, ttl_s=ttl,
        )  # fmt: skip
        try:
            await start_all([doomed, survivor])
            async with aiohttp.ClientSession() as session:
                # three requests that hang upstream, each holding ~$0.03 of the $0.10 budget
                hanging = [
                    asyncio.create_task(chat(session, doomed, route="slow", max_tokens=3000))
                    for _ in range(3)
                ]
                deadline = time.monotonic() + 10
                while int(redis_db.get(f"{redis_prefix}hr:acme") or 0) < 90_000_000:
                    assert time.monotonic() < deadline, "the doomed replica never reserved"
                    await asyncio.sleep(0.05)
                assert (await chat(session, survivor, max_tokens=3000))[0] == 429  # budget held elsewhere
                doomed.kill()
                killed_at = time.monotonic()
                for task in hanging:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                status, body, _ = await chat(session, survivor, max_tokens=3000)
                if time.monotonic() - killed_at < ttl - 0.5:
                    assert status == 429, body  # the dead replica's holds still count within the TTL
                while True:  # ... and are freed once it has passed
                    status, body, _ = await chat(session, survivor, max_tokens=3000)
                    if status == 200:
                        break
                    assert status == 429, body
                    assert time.monotonic() - killed_at < ttl + 5, "holds of the killed replica never expired"
                    await asyncio.sleep(0.25)
                freed_after = time.monotonic() - killed_at
                assert (await chat(session, survivor, max_tokens=3000))[0] == 200  # and it carries on
        finally:
            stop_all([doomed, survivor])
    print(f"\nkill -9: holds freed {freed_after:.1f}s after the kill (TTL {ttl}s)")
    assert freed_after >= ttl - 1.0
    rows = ledger_rows(url, schema)
    assert len(rows) == 2  # the survivor's two requests; the killed ones never completed
    assert sum(n for _, _, n in rows) <= 100_000_000


async def test_redis_losing_its_data_mid_run_never_overspends(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str
) -> None:
    from greenlang_llm.state.redis_client import connect_redis

    url, schema = pg_schema
    db = None
    for i in range(15, 7, -1):  # a database nobody uses, so emptying it touches no one else's keys
        probe = connect_redis(f"{REDIS_BASE}/{i}")
        empty = probe.dbsize() == 0
        probe.close()
        if empty:
            db = i
            break
    if db is None:
        pytest.skip("no empty Redis database (8-15) to empty mid-run")
    client = connect_redis(f"{REDIS_BASE}/{db}")
    sim_config = SimulatorConfig(defaults=ModelBehaviour(reply_tokens=100_000, latency_ms=400))
    results: list[tuple[int, dict[str, Any], Any]] = []
    async with Simulator(sim_config) as sim:
        replicas = make_replicas(
            2, tmp_path, database_url=url, redis_url=f"{REDIS_BASE}/{db}", prefix=redis_prefix,
            openai_url=sim.openai_base_url, budget_usd=1.0,
        )  # fmt: skip
        try:
            await start_all(replicas)
            stop_at = time.monotonic() + 6.0
            async with aiohttp.ClientSession() as session:

                async def worker(i: int) -> None:
                    while time.monotonic() < stop_at:
                        results.append(await chat(session, replicas[i % 2], max_tokens=1500))
                        if results[-1][0] != 200:
                            await asyncio.sleep(0.05)

                workers = [asyncio.create_task(worker(i)) for i in range(8)]
                await asyncio.sleep(1.5)  # some spend committed, holds in flight
                served_before = sum(1 for r in results if r[0] == 200)
                # Redis loses everything (a real FLUSHALL when this host's Redis is ours alone)
                client.flushall() if FLUSHALL else client.flushdb()
                await asyncio.gather(*workers)
        finally:
            stop_all(replicas)
            client.flushdb()
            client.close()
    served = {h["x-request-id"] for status, _, h in results if status == 200}
    refused = [b for status, b, _ in results if status != 200]
    assert all(b["error"]["code"] == "budget_exceeded" for b in refused), refused[:1]
    rows = ledger_rows(url, schema)
    spent = sum(n for _, _, n in rows)
    logs = "".join(r.log.read_text() for r in replicas)
    print(f"\nFLUSHDB mid-run: served {served_before} before, {len(served)} in all, spent ${spent / 1e9:.6f}")
    assert 0 < served_before < len(served)  # the loss happened mid-run, with budget left
    assert "rebuilding month-to-date totals from the ledger" in logs
    assert spent <= 1_000_000_000  # never overspent
    assert {rid for rid, _, _ in rows} == served  # one record per served request
