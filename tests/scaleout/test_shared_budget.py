"""One hard budget across replicas: 300 concurrent requests over three gateways never overshoot it.

Every reply runs to ``max_tokens`` (the simulator's reply is longer), so each served request
really costs (almost) its reservation and the budget is genuinely contested: $4.50 of worst
case against a $1.00 limit. Afterwards the shared PostgreSQL ledger holds exactly one record
per request answered 200 (by its ``x-request-id``), and nothing else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scaleout_support import chat, ledger_rows, make_replicas, start_all, stop_all

from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LIMIT_NANOS = 1_000_000_000  # $1.00
REQUESTS = 300
SIM = SimulatorConfig(defaults=ModelBehaviour(reply_tokens=100_000, latency_ms=20))


async def test_hard_budget_across_three_replicas_is_never_overshot(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str
) -> None:
    url, schema = pg_schema
    async with Simulator(SIM) as sim:
        replicas = make_replicas(
            3, tmp_path, database_url=url, prefix=redis_prefix, openai_url=sim.openai_base_url, budget_usd=1.0
        )
        try:
            await start_all(replicas)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=REQUESTS)) as session:
                results = await asyncio.gather(*(chat(session, replicas[i % 3]) for i in range(REQUESTS)))
        finally:
            stop_all(replicas)  # SIGTERM drains: every acknowledged record reaches the ledger
    served: dict[str, int] = {}
    per_replica = [0, 0, 0]
    for i, (status, body, headers) in enumerate(results):
        if status == 200:
            served[headers["x-request-id"]] = i % 3
            per_replica[i % 3] += 1
        else:
            assert status == 429, body
            assert body["error"]["code"] == "budget_exceeded"
    rows = ledger_rows(url, schema)
    spent = sum(nanos for _, _, nanos in rows)
    print(f"\nshared budget: served={len(served)} per replica={per_replica} refused={REQUESTS - len(served)} "
          f"spent=${spent / 1e9:.6f} of $1.00")  # fmt: skip
    assert spent <= LIMIT_NANOS
    assert spent >= LIMIT_NANOS * 0.9  # the budget was used, not refused wholesale
    assert len(rows) == len(served)  # exactly one record per completed request
    assert {rid for rid, _, _ in rows} == set(served)
    assert all(n > 0 for n in per_replica)  # all three replicas served part of it


async def test_replicas_report_shared_state_in_readiness(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str
) -> None:
    url, _ = pg_schema
    async with Simulator(SIM) as sim:
        replicas = make_replicas(
            2, tmp_path, database_url=url, prefix=redis_prefix, openai_url=sim.openai_base_url, budget_usd=1.0
        )
        try:
            await start_all(replicas)
            await asyncio.sleep(0.5)  # let both heartbeats land
            async with aiohttp.ClientSession() as session:
                bodies: list[dict[str, Any]] = []
                for r in replicas:
                    async with session.get(f"{r.url}/health/ready") as resp:
                        assert resp.status == 200
                        bodies.append(await resp.json())
        finally:
            stop_all(replicas)
    for body in bodies:
        assert body["shared_state"] == {"redis": "ok", "replicas": 2}
