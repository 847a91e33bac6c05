"""Budget race: a $1.00 hard budget, 200 concurrent requests whose worst case adds up to $3.

Through the library (``CostTracker.reserve`` → ``LLMRouter.generate`` → ``commit``, the
pattern of docs/costs.md) and through the gateway. The simulator answers every request with
exactly ``max_tokens`` output tokens, so each successful request really costs (almost) its
worst case and the budget is genuinely contested. Whatever the interleaving: committed spend
<= $1.00, every refusal is ``BudgetExceededError`` / HTTP 429 ``budget_exceeded``, and the
ledger holds exactly the successful requests at exactly their reported costs.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from reliability_support import (
    FAULTY,
    FAULTY_ANTHROPIC,
    GATEWAY_ENV,
    PROVIDER_KEY,
    SEED,
    TENANT_A_KEY,
    chaos_rules,
    gateway_config,
    serve_app,
)

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm._errors import BudgetExceededError
from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.gateway.app import create_app
from greenlang_llm.gateway.config import parse_config
from greenlang_llm.providers import OpenAIProvider
from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig

LIMIT = Decimal("1.00")
REQUESTS = 200

# every reply runs to max_tokens, so actual cost ~ worst case
SIM = SimulatorConfig(seed=SEED, defaults=ModelBehaviour(reply_tokens=100_000))


def _exact(x: float) -> Decimal:
    """A float cost as the exact decimal it stands for (costs are whole nano-dollars)."""
    return Decimal(round(x * 1_000_000_000)) / 1_000_000_000


def _ledger(tracker: CostTracker, tmp_path: Path) -> dict[str, Decimal]:
    out = tmp_path / "ledger.json"
    tracker.export_json(out)
    rows = orjson.loads(out.read_bytes())["records"]
    records = {row["request_id"]: Decimal(str(row["total_cost_usd"])) for row in rows}
    assert len(records) == len(rows)
    return records


async def test_library_hard_budget_holds_under_two_hundred_concurrent_requests(
    tmp_path: Path, ledger_url: str
) -> None:
    tracker = CostTracker(storage=ledger_url)
    tracker.set_budget("race", float(LIMIT), hard_limit=True)
    async with Simulator(SIM) as sim:
        provider = OpenAIProvider("gpt-4o", api_key=PROVIDER_KEY, base_url=sim.openai_base_url, max_retries=0)
        request = GenerationRequest(prompt="spend it", max_tokens=1500)
        worst = provider.estimate_cost(request)
        assert _exact(worst) * REQUESTS >= 3 * LIMIT  # the race is real: worst case $3
        async with LLMRouter() as router:
            router.register_provider("gpt", provider)

            async def one(i: int) -> tuple[str, Decimal] | BudgetExceededError:
                try:
                    reservation = await asyncio.to_thread(tracker.reserve, "race", worst, provider="gpt")
                except BudgetExceededError as exc:
                    return exc
                try:
                    response = await router.generate(request)
                except BaseException:
                    await asyncio.to_thread(tracker.release, reservation)
                    raise
                rid = f"race-{i}"
                assert await asyncio.to_thread(tracker.commit, reservation, response.usage, request_id=rid)
                return rid, _exact(response.usage.total_cost_usd)

            results = await asyncio.gather(*(one(i) for i in range(REQUESTS)))

    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    served = dict(r for r in results if not isinstance(r, BudgetExceededError))  # type: ignore[misc]
    assert len(refused) + len(served) == REQUESTS
    assert refused, "the budget must have refused something"
    assert all(e.tenant_id == "race" and e.limit_usd == float(LIMIT) for e in refused)
    records = _ledger(tracker, tmp_path)
    assert records == served  # exactly the successful requests, at exactly their reported cost
    spent = sum(records.values(), Decimal(0))
    assert spent <= LIMIT
    status = tracker.check_budget("race")
    assert _exact(status.spent_usd) == spent
    assert status.reserved_usd == 0
    tracker.close()
    print(f"\nbudget race (library): served={len(served)} refused={len(refused)} spent=${spent} "
          f"(limit ${LIMIT}, worst case each ${_exact(worst)})")


@pytest.mark.parametrize("chaos", [False, True], ids=["healthy", "chaos"])
async def test_gateway_hard_budget_holds_under_two_hundred_concurrent_requests(
    tmp_path: Path, ledger_url: str, chaos: bool
) -> None:
    """With ``chaos``, two of the route's three models fail 30% of the time (failover, releases)."""
    faults = chaos_rules(FAULTY) if chaos else []
    sim_config = SimulatorConfig(seed=SEED, defaults=SIM.defaults, faults=faults)
    async with Simulator(sim_config) as sim:
        budget = {"tenant": "tenant-a", "monthly_limit_usd": float(LIMIT), "hard_limit": True}
        data = gateway_config(sim.anthropic_base_url, sim.openai_base_url, timeout=2.0,
                              database_url=ledger_url, budgets=[budget])
        config = parse_config(data, GATEWAY_ENV)
        app = create_app(config)
        service = app.state.service
        # The reservation is the route's most expensive member (claude-3-5-haiku: $4/MTok out);
        # max_tokens makes it $0.015; the priority route answers with that very model.
        max_tokens = 3750
        async with serve_app(app) as url, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=REQUESTS)
        ) as session:

            async def one(i: int) -> dict[str, Any]:
                if i % 2:
                    path, headers = "/v1/chat/completions", {"authorization": f"Bearer {TENANT_A_KEY}"}
                else:
                    path = "/v1/messages"
                    headers = {"x-api-key": TENANT_A_KEY, "anthropic-version": "2023-06-01"}
                stream = i % 4 == 0  # a quarter streamed: they settle on another code path
                body = {"model": "default", "max_tokens": max_tokens, "stream": stream,
                        "messages": [{"role": "user", "content": "spend it"}]}
                async with session.post(url + path, json=body, headers=headers) as resp:
                    raw = await resp.read()
                    return {"i": i, "status": resp.status, "stream": stream and resp.status == 200,
                            "body": None if stream and resp.status == 200 else orjson.loads(raw),
                            "headers": {k.lower(): v for k, v in resp.headers.items()}}

            results = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
            await service.drain()
            if not chaos:  # no upstream call for a refused request
                assert sim.stats.by_model[FAULTY_ANTHROPIC] == sum(r["status"] == 200 for r in results)

        served = {r["headers"]["x-request-id"]: Decimal(r["headers"]["x-greenlang-cost-usd"])
                  for r in results if r["status"] == 200 and not r["stream"]}
        streamed = {r["headers"]["x-request-id"] for r in results if r["stream"]}
        refused = [r for r in results if r["status"] != 200]
        assert refused, "the budget must have refused something"
        assert streamed, "some streams must have been served"
        for r in refused:
            assert r["status"] == 429
            if r["i"] % 2:
                assert r["body"]["error"]["code"] == "budget_exceeded"
            else:
                assert r["body"]["error"]["type"] == "rate_limit_error"
        # the guarantee's premise: no request cost more than the worst case reserved for it
        worst = max(_exact(p.estimate_cost(GenerationRequest(prompt="spend it", max_tokens=max_tokens)))
                    for p in service.providers.values())
        assert worst * REQUESTS >= 3 * LIMIT
        reopened = CostTracker(storage=ledger_url)  # the gateway closed its own
        rows = _ledger(reopened, tmp_path)
        status = reopened.check_budget("tenant-a")
        reopened.close()
        records: dict[str, Decimal] = {}  # a continued stream has one row per upstream call: <id>, <id>.2
        for rid, cost in rows.items():
            records[rid.split(".")[0]] = records.get(rid.split(".")[0], Decimal(0)) + cost
        assert max(records.values()) <= worst
        assert set(records) == set(served) | streamed  # one request per served request, streams included
        assert {rid: records[rid] for rid in served} == served  # plain: exactly the cost header
        spent = sum(records.values(), Decimal(0))
        assert spent <= LIMIT
        assert _exact(status.spent_usd) == spent
        print(f"\nbudget race (gateway, {'chaos' if chaos else 'healthy'}): served={len(records)} "
              f"refused={len(refused)} spent=${spent} (limit ${LIMIT})")
