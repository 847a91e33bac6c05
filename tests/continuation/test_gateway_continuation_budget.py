"""A continued stream under a hard budget, through the gateway (gateway/continuation_budget.py).

With ``max_tokens`` = 60 and a 60-word reply the call runs to its limit: cut after 20 words, the
cut call (counted locally, ~40 tokens) plus its continuation (the prompt again, the prefill, the
remaining tokens) cost more than the one call's worst case the request reserved. With a budget
that holds that worst case but not the continuation's, the continuation must be refused (the
client's stream ends with the API's error event) rather than pass the limit — before the hook
existed, that scenario spent 2% over its limit. With room, the continuation reserves its own worst
case and every reservation is freed exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import openai
import pytest
import pytest_asyncio
from continuation_support import MODEL, WORDS
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm._types import GenerationRequest
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

PROMPT = [{"role": "user", "content": "Tell me a long story about rivers"}]
MAX_TOKENS = WORDS
CUT = 20


def first_call_worst_case(sim: Simulator) -> float:
    """The gateway's reservation for one request: the dearer route member's prompt + max_tokens."""
    request = GenerationRequest(messages=PROMPT, max_tokens=MAX_TOKENS)
    members = [AnthropicProvider(MODEL, api_key="sk-test-canary", base_url=sim.base_url),
               OpenAIProvider(MODEL, api_key="sk-test-canary", base_url=sim.openai_base_url)]
    return max(p.estimate_cost(request) for p in members)


def config(sim: Simulator, limit: float, durable: bool) -> dict[str, Any]:
    def provider(name: str, api: str) -> dict[str, Any]:
        base = sim.base_url if api == "anthropic" else sim.openai_base_url
        return {"name": name, "type": api, "model_id": MODEL, "base_url": base, "api_key_env": "SIM_KEY",
                "max_retries": 0}

    return {
        "server": {"database_url": "sqlite:///:memory:", "durable_replies": durable},
        "providers": [provider("claude", "anthropic"), provider("gpt", "openai")],
        # every stream starts on claude (its breaker never opens on the cuts)
        "routes": [{"name": "story", "providers": ["claude", "gpt"], "circuit_breaker_threshold": 1000}],
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "budget"}],
        "budgets": [{"tenant": "acme", "monthly_limit_usd": limit, "hard_limit": True}],
    }


@pytest_asyncio.fixture
async def gateway_for(sim: Simulator) -> AsyncIterator[Any]:
    """``async with gateway_for(limit, durable) as (service, url)``."""
    import contextlib

    @contextlib.asynccontextmanager
    async def build(limit: float, durable: bool = False) -> AsyncIterator[tuple[Any, str]]:
        app, service = make_app(config(sim, limit, durable), providers={}, env=SIM_ENV)
        async with serve(app) as url:
            yield service, url

    yield build


async def stream(url: str, max_tokens: int = MAX_TOKENS) -> tuple[str, str, BaseException | None]:
    """(request id, text received, the error that ended the stream or None)."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0, timeout=20)
    text: list[str] = []
    request_id = ""
    try:
        async with client.chat.completions.with_streaming_response.create(
            model="story", messages=PROMPT, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
            max_tokens=max_tokens,
        ) as response:
            request_id = response.headers["x-request-id"]
            async for chunk in await response.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
    except openai.APIError as exc:
        return request_id, "".join(text), exc
    finally:
        await client.close()
    return request_id, "".join(text), None


def rows_by_request(service: Any) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for row in service.tracker.ledger.iter_records(0, 2**62):
        grouped.setdefault(row.request_id.split(".")[0], []).append(row)
    return {rid: sorted(rows, key=lambda r: r.request_id) for rid, rows in grouped.items()}


def exact(x: float) -> Decimal:
    return Decimal(round(x * 1_000_000_000)) / 1_000_000_000


def cost(row: Any) -> Decimal:
    return Decimal(row.total_cost_nanos) / 1_000_000_000


@pytest.mark.parametrize("durable", [False, True], ids=["queued", "durable_replies"])
async def test_a_continuation_that_does_not_fit_the_hard_budget_is_refused_not_overspent(
        sim: Simulator, gateway_for: Any, durable: bool) -> None:
    limit = first_call_worst_case(sim) * 1.1  # the first call fits; the continuation's prompt does not
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=CUT))
    async with gateway_for(limit, durable) as (service, url):
        request_id, text, error = await stream(url)
        await service.drain()
        status = service.tracker.check_budget("acme")
        rows = rows_by_request(service)
    assert isinstance(error, openai.APIError)
    assert "budget" in error.message
    assert "continu" in error.message
    assert len(text.split()) == CUT  # exactly what the cut call delivered, then the error event
    assert sim.stats.by_path.get("/v1/chat/completions", 0) == 0  # the continuation was never sent
    assert [(r.request_id, r.provider) for r in rows[request_id]] == [(request_id, "claude")]
    assert exact(status.spent_usd) == cost(rows[request_id][0])
    assert status.spent_usd <= limit
    assert status.reserved_usd == 0  # the request's reservation and nothing else was held, and freed


@pytest.mark.parametrize("durable", [False, True], ids=["queued", "durable_replies"])
async def test_a_continuation_that_fits_reserves_its_own_worst_case_and_frees_it_once(
        sim: Simulator, gateway_for: Any, durable: bool) -> None:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    async with gateway_for(10.0, durable) as (service, url):
        tracker = service.tracker
        held: list[Any] = []
        reserve, release_many = tracker.reserve, tracker.release_many
        released: list[str] = []

        def spy_reserve(*args: Any, **kw: Any) -> Any:
            held.append(reserve(*args, **kw))
            return held[-1]

        def spy_release_many(reservations: Any) -> Any:
            items = list(reservations)
            released.extend(r.id for r in items)
            return release_many(items)

        tracker.reserve, tracker.release_many = spy_reserve, spy_release_many
        request_id, text, error = await stream(url, max_tokens=200)
        await service.drain()
        status = tracker.check_budget("acme")
        rows = rows_by_request(service)
    assert error is None
    assert len(text.split()) == WORDS
    assert [(r.request_id, r.provider) for r in rows[request_id]] == [(request_id, "claude"),
                                                                     (f"{request_id}.2", "gpt")]
    assert len(held) == 2  # the request's worst case, then the continuation's
    continuation_request = GenerationRequest(
        messages=[*PROMPT, {"role": "assistant", "content": " ".join(text.split()[:40])}],
        max_tokens=200 - rows[request_id][0].output_tokens)
    assert exact(held[1].amount_usd) >= cost(rows[request_id][1])  # it covers what it paid
    assert held[1].amount_usd == pytest.approx(
        OpenAIProvider(MODEL, api_key="sk-test-canary").estimate_cost(continuation_request), rel=0.2)
    assert sorted(released) == sorted(r.id for r in held)  # each freed exactly once
    assert status.reserved_usd == 0
    assert exact(status.spent_usd) == sum((cost(r) for r in rows[request_id]), Decimal(0))


async def test_concurrent_cut_streams_never_overshoot_the_hard_budget(
        sim: Simulator, gateway_for: Any) -> None:
    n = 24
    worst = first_call_worst_case(sim)
    limit = worst * 30.0  # every first call fits (its quick bound is ~1.1x worst), and a few continuations
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=CUT))
    async with gateway_for(limit) as (service, url):
        results = await asyncio.gather(*(stream(url) for _ in range(n)))
        await service.drain()
        status = service.tracker.check_budget("acme")
        rows = rows_by_request(service)
    refused_at_open = [e for rid, _, e in results if not rid]
    served = {rid: (text, e) for rid, text, e in results if rid}
    assert all(isinstance(e, openai.RateLimitError) for e in refused_at_open)
    assert len(refused_at_open) + len(served) == n
    completed = [rid for rid, (text, e) in served.items() if e is None]
    refused_continuations = [rid for rid, (_, e) in served.items() if e is not None]
    for rid in completed:
        assert len(served[rid][0].split()) > CUT  # continued (up to what max_tokens leaves)
        assert [r.provider for r in rows[rid]] == ["claude", "gpt"]
    for rid in refused_continuations:
        assert "budget" in served[rid][1].message  # type: ignore[union-attr]
        assert [r.provider for r in rows[rid]] == ["claude"]
    assert set(rows) == set(served)  # one group per served request, one row per upstream call with tokens
    assert sim.stats.by_path.get("/v1/chat/completions", 0) == len(completed)
    assert refused_at_open or refused_continuations  # the budget was really contested
    spent = sum((cost(r) for group in rows.values() for r in group), Decimal(0))
    assert exact(status.spent_usd) == spent
    assert spent <= exact(limit)
    assert status.reserved_usd == 0
    print(f"\ncontinuation budget race: {len(completed)} continued, "
          f"{len(refused_continuations)} continuations refused, {len(refused_at_open)} refused at open; "
          f"spent ${spent} of ${exact(limit)}")


async def test_on_the_anthropic_api_the_refusal_is_an_error_event_never_a_clean_end(
        sim: Simulator, gateway_for: Any) -> None:
    import httpx2

    limit = first_call_worst_case(sim) * 1.1
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=CUT))
    body = {"model": "story", "max_tokens": MAX_TOKENS, "stream": True, "messages": PROMPT}
    headers = {"x-api-key": ACME_KEY, "anthropic-version": "2023-06-01"}
    async with gateway_for(limit) as (service, url), httpx2.AsyncClient(timeout=20) as client:
        response = await client.post(f"{url}/v1/messages", json=body, headers=headers)
        await service.drain()
        status = service.tracker.check_budget("acme")
    lines = response.text.splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert response.status_code == 200
    assert events[-1] == "error"
    assert "message_stop" not in events
    assert '"rate_limit_error"' in response.text
    assert "budget" in response.text
    assert status.spent_usd <= limit
    assert status.reserved_usd == 0
