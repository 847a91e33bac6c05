"""Chaos through the gateway: both APIs, plain and streamed, over a faulty simulator.

The same fault mix as the router suite (two faulted upstream models, one healthy) behind
``greenlang-llm``'s gateway on a loopback port, hit at concurrency 50 by aiohttp clients
speaking the OpenAI and the Anthropic API. Every plain request gets a 200 within the
client deadline; every stream either completes or, if an upstream broke after the first
byte, ends with the API's error event (never a clean finish); the ledger holds exactly one
record per request and its total equals the sum of the plain replies' cost headers plus
the streams' records. Callers that hang up mid-stream close their upstream stream and still
get exactly one ledger row. A total outage answers 503/529 in the API's shape at once, and
the gateway recovers once the providers are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from reliability_support import (
    FAULTY,
    GATEWAY_ENV,
    MID_STREAM_KINDS,
    SEED,
    TENANT_A_KEY,
    chaos_rules,
    gateway_config,
    scaled,
    serve_app,
)

from greenlang_llm import llm_router
from greenlang_llm.circuit_breaker import CircuitBreaker
from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.gateway.app import create_app
from greenlang_llm.gateway.config import parse_config
from greenlang_llm.gateway.service import GatewayService
from greenlang_llm.simulator import FaultRule, ModelBehaviour, Simulator, SimulatorConfig

CONCURRENCY = 50
PROVIDER_TIMEOUT = 1.0
PROVIDER_RETRIES = 1
# Worst case per gateway request: every provider of the route once (router max_retries = n - 1),
# each with P + 1 HTTP attempts: 3 x 2 = 6. Wall time: two faulted providers x (2 attempts x 1 s
# + a 1 s retry-after) + the healthy one: 7 s; the client's deadline leaves room for scheduling.
WORST_ATTEMPTS_PER_CALL = 3 * (PROVIDER_RETRIES + 1)
CLIENT_DEADLINE = 10.0


@contextlib.asynccontextmanager
async def _stack(sim: Simulator, **config: Any) -> AsyncIterator[tuple[str, GatewayService]]:
    data = gateway_config(sim.anthropic_base_url, sim.openai_base_url, timeout=PROVIDER_TIMEOUT,
                          max_retries=PROVIDER_RETRIES, **config)
    app = create_app(parse_config(data, GATEWAY_ENV), tracker=CostTracker(storage="sqlite:///:memory:"))
    async with serve_app(app) as url:
        yield url, app.state.service


def _openai(i: int, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = {"model": "default", "max_tokens": 32,
                            "messages": [{"role": "user", "content": f"gateway chaos {i}"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return "/v1/chat/completions", {"authorization": f"Bearer {TENANT_A_KEY}"}, body


def _anthropic(i: int, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = {"model": "default", "max_tokens": 32, "stream": stream,
                            "messages": [{"role": "user", "content": f"gateway chaos {i}"}]}
    return "/v1/messages", {"x-api-key": TENANT_A_KEY, "anthropic-version": "2023-06-01"}, body


async def _run(url: str, n: int, stream_every: int) -> list[dict[str, Any]]:
    """n requests, alternating APIs, every ``stream_every``-th one streamed; at most 50 in flight."""
    sem = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> dict[str, Any]:
            stream = stream_every > 0 and i % stream_every == 0
            api = "openai" if i % 2 else "anthropic"
            path, headers, body = (_openai if api == "openai" else _anthropic)(i, stream)
            async with sem:
                started = time.monotonic()
                timeout = aiohttp.ClientTimeout(total=CLIENT_DEADLINE)
                async with session.post(url + path, json=body, headers=headers, timeout=timeout) as resp:
                    raw = await resp.read()
                return {"api": api, "stream": stream, "status": resp.status, "body": raw.decode(),
                        "headers": {k.lower(): v for k, v in resp.headers.items()},
                        "elapsed": time.monotonic() - started}

        return await asyncio.gather(*(one(i) for i in range(n)))


def _ledger_records(service: GatewayService, tmp_path: Path) -> dict[str, Decimal]:
    """request_id -> exact cost (summed over a continued stream's rows), from the tracker's own JSON
    export (costs are exact decimals)."""
    out = tmp_path / "ledger.json"
    service.tracker.export_json(out)
    rows = orjson.loads(out.read_bytes())["records"]
    assert len({row["request_id"] for row in rows}) == len(rows)  # no duplicate request ids
    records: dict[str, Decimal] = {}  # a continued stream has one row per upstream call: <id>, <id>.2
    for row in rows:
        rid = row["request_id"].split(".")[0]
        records[rid] = records.get(rid, Decimal(0)) + Decimal(str(row["total_cost_usd"]))
    return records


async def _metrics(url: str) -> dict[str, float]:
    """``/metrics`` samples of the request counter and the in-flight gauge, summed by name."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        text = await resp.text()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("greenlang_gateway_requests_total", "greenlang_gateway_in_flight")):
            name, value = line.rsplit(" ", 1)
            key = name.split("{")[0]
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _stream_outcome(api: str, body: str) -> str:
    if api == "openai":
        assert body.endswith("data: [DONE]\n\n")
        if '"error"' in body:
            return "interrupted"
        assert '"finish_reason":"stop"' in body or '"finish_reason":"length"' in body
        return "completed"
    if "event: error" in body:
        assert "event: message_stop" not in body
        return "interrupted"
    assert body.rstrip().endswith('data: {"type":"message_stop"}') or "event: message_stop" in body
    return "completed"


@pytest.mark.slow
async def test_gateway_chaos_plain_all_succeed_streams_complete_or_error_after_first_byte(
    tmp_path: Path,
) -> None:
    n = scaled(400, 2000)
    async with (
        Simulator(SimulatorConfig(seed=SEED, faults=chaos_rules(FAULTY))) as sim,
        _stack(sim) as (url, service),
    ):
        results = await _run(url, n, stream_every=4)
        await service.drain()
        plain = [r for r in results if not r["stream"]]
        streams = [r for r in results if r["stream"]]
        assert [r for r in plain if r["status"] != 200] == []
        assert [r for r in streams if r["status"] != 200] == []  # first-byte failures failed over
        assert max(r["elapsed"] for r in results) < CLIENT_DEADLINE
        outcomes = [_stream_outcome(r["api"], r["body"]) for r in streams]
        interrupted = outcomes.count("interrupted")
        assert interrupted <= sum(sim.stats.faults[kind] for kind in MID_STREAM_KINDS)
        assert sim.stats.requests <= WORST_ATTEMPTS_PER_CALL * n

        router = service.targets["default"].router
        metrics = router.get_metrics()
        assert metrics["providers"]["steady"]["failed_requests"] == 0
        assert all(name != "steady" for name, _ in router.breaker_transitions)

        metrics_now = await _metrics(url)
        assert metrics_now["greenlang_gateway_in_flight"] == 0
        assert metrics_now["greenlang_gateway_requests_total"] == n
        # the ledger: exactly one record per request (interrupted streams too), exact plain costs
        records = _ledger_records(service, tmp_path)
        ids = [r["headers"]["x-request-id"] for r in results]
        assert len(set(ids)) == n
        assert sorted(records) == sorted(ids)
        for r in plain:
            assert records[r["headers"]["x-request-id"]] == Decimal(r["headers"]["x-greenlang-cost-usd"])
        print(
            f"\nchaos gateway: n={n} plain={len(plain)} streams={len(streams)} "
            f"interrupted_mid_stream={interrupted} upstream={sim.stats.requests} "
            f"({sim.stats.requests / n:.2f}/call, bound {WORST_ATTEMPTS_PER_CALL}) "
            f"failovers={metrics['global']['failover_count']} "
            f"max_latency={max(r['elapsed'] for r in results):.2f}s ledger_rows={len(records)}"
        )


async def test_gateway_total_outage_is_a_fast_503_in_api_shape_then_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Longer than the first batch takes after the breakers opened (its in-flight requests still
    # back off 1 s between their provider retries), so no half-open probe falls inside the checks.
    recovery = 4.0
    # The gateway config has no breaker settings (60 s recovery); shorten it for this test only.
    monkeypatch.setattr(
        llm_router, "CircuitBreaker",
        lambda threshold, timeout, **kw: CircuitBreaker(2, recovery, **kw),
    )
    async with Simulator(SimulatorConfig(seed=SEED)) as sim:
        sim.faults.add(FaultRule("down"))
        async with _stack(sim) as (url, service):
            results = await _run(url, 20, stream_every=0)
            openai = [r for r in results if r["api"] == "openai"]
            anthropic = [r for r in results if r["api"] == "anthropic"]
            assert {r["status"] for r in openai} == {503}
            assert {r["status"] for r in anthropic} == {529}
            for r in openai:
                assert '"error"' in r["body"]
                assert "Traceback" not in r["body"]
            for r in anthropic:
                assert '"type":"error"' in r["body"].replace(" ", "")
                assert "overloaded_error" in r["body"]
            states = {s for route, _p, s in service.breaker_states() if route == "default"}
            assert states == {"open"}
            upstream = sim.stats.requests
            results = await _run(url, 50, stream_every=0)
            assert {r["status"] for r in results} <= {503, 529}
            assert sim.stats.requests == upstream  # breakers open: no upstream call at all
            assert max(r["elapsed"] for r in results) < 0.5
            for r in results:
                if r["api"] == "openai":
                    assert 0 < float(r["headers"]["retry-after"]) <= recovery + 1

            sim.faults.set_rules([])
            back = time.monotonic()
            while True:
                (result,) = await _run(url, 1, stream_every=0)
                if result["status"] == 200:
                    break
                assert time.monotonic() - back <= recovery + 1.0
                await asyncio.sleep(0.02)
            print(f"\ntotal outage (gateway): recovered {time.monotonic() - back:.2f}s after the providers "
                  f"came back (recovery_timeout {recovery}s)")


@pytest.mark.slow
async def test_abandoned_streams_under_chaos_close_upstream_and_are_recorded_once(tmp_path: Path) -> None:
    """Callers hang up at seeded points mid-stream while upstreams fail: every upstream stream is
    closed, every request has exactly one ledger row, and no budget reservation is left behind."""
    n = scaled(200, 1000)
    rng = random.Random(SEED)
    hang_up_after = [rng.randint(1, 6) for _ in range(n)]  # SSE reads before hanging up (0: never)
    for i in range(0, n, 3):
        hang_up_after[i] = 0
    behaviour = ModelBehaviour(reply_tokens=40, token_ms=2)
    sim_config = SimulatorConfig(seed=SEED, defaults=behaviour, faults=chaos_rules(FAULTY))
    budget = {"tenant": "tenant-a", "monthly_limit_usd": 1000.0, "hard_limit": True}
    async with Simulator(sim_config) as sim, _stack(sim, budgets=[budget]) as (url, service):
        sem = asyncio.Semaphore(CONCURRENCY)
        ids: list[str] = []
        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> None:
                path, headers, body = (_openai if i % 2 else _anthropic)(i, True)
                async with sem, session.post(url + path, json=body, headers=headers) as resp:
                    assert resp.status == 200
                    ids.append(resp.headers["x-request-id"])
                    reads = 0
                    async for _ in resp.content.iter_any():
                        reads += 1
                        if reads == hang_up_after[i]:
                            resp.close()  # hang up mid-stream
                            return

            await asyncio.gather(*(one(i) for i in range(n)))
        for _ in range(200):  # the gateway notices disconnects asynchronously
            await service.drain()
            if sim.stats.open_streams == 0 and service.pending_writes == 0:
                break
            await asyncio.sleep(0.02)
        assert sim.stats.open_streams == 0, "an abandoned stream kept its upstream open"
        metrics_now = await _metrics(url)
        assert metrics_now["greenlang_gateway_in_flight"] == 0  # hung-up requests are not stuck
        assert metrics_now["greenlang_gateway_requests_total"] == n
        records = _ledger_records(service, tmp_path)
        assert sorted(records) == sorted(ids)  # exactly one row per request, abandoned ones included
        status = service.tracker.check_budget("tenant-a")
        assert status.reserved_usd == 0
        assert Decimal(round(status.spent_usd * 10**9)) / 10**9 == sum(records.values(), Decimal(0))
        print(f"\nabandoned streams under chaos: n={n} hung_up={sum(1 for h in hang_up_after if h)} "
              f"client_closed_upstream={sim.stats.streams['client_closed']} ledger_rows={len(records)}")
