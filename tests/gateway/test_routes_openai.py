"""The official openai SDK against the gateway, which talks to the simulator."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from gateway_support import ACME_KEY, BETA_KEY, CLAUDE, GPT

from greenlang_llm.simulator.faults import FaultRule

MESSAGES: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def client(url: str, key: str = ACME_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=20)


async def test_plain_completion_through_route_records_one_exact_ledger_entry(stack: Any) -> None:
    async with client(stack.url) as c:
        raw = await c.chat.completions.with_raw_response.create(model="default", messages=MESSAGES)
        reply = raw.parse()
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == CLAUDE  # the model that answered, not the route name
    assert raw.headers["x-greenlang-provider"] == "claude"
    assert raw.headers["x-request-id"].startswith("req_")
    cost = float(raw.headers["x-greenlang-cost-usd"])
    assert cost > 0
    assert reply.usage is not None
    assert reply.usage.total_tokens > 0
    await stack.service.drain()
    summary = stack.service.tracker.get_summary(tenant_id="acme")
    assert summary.total_requests == 1
    assert summary.total_cost_usd == pytest.approx(cost, abs=1e-9)
    assert summary.total_tokens == reply.usage.total_tokens
    assert summary.breakdown_by_provider == {"claude": pytest.approx(cost, abs=1e-9)}
    assert summary.breakdown_by_agent == {"web": pytest.approx(cost, abs=1e-9)}


async def test_stream_with_usage_matches_plain_reply_and_cost(stack: Any) -> None:
    async with client(stack.url) as c:
        plain = await c.chat.completions.with_raw_response.create(model="default", messages=MESSAGES)
        plain_reply = plain.parse()
        stream = await c.chat.completions.create(
            model="default", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        texts: list[str] = []
        usage = None
        finish = None
        async for chunk in stream:
            if chunk.choices:
                texts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    assert "".join(texts) == plain_reply.choices[0].message.content
    assert finish == "stop"
    assert usage is not None
    assert plain_reply.usage is not None
    assert usage.prompt_tokens == plain_reply.usage.prompt_tokens
    assert usage.completion_tokens == plain_reply.usage.completion_tokens
    await stack.service.drain()
    summary = stack.service.tracker.get_summary(tenant_id="acme")
    assert summary.total_requests == 2
    assert summary.total_cost_usd == pytest.approx(2 * float(plain.headers["x-greenlang-cost-usd"]), abs=2e-9)


async def test_unknown_key_is_authentication_error_without_upstream_call(stack: Any) -> None:
    async with client(stack.url, key="sk-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.chat.completions.create(model="default", messages=MESSAGES)
    assert info.value.status_code == 401
    assert stack.sim.stats.requests == 0


async def test_unknown_model_is_not_found_with_model_not_found_code(stack: Any) -> None:
    async with client(stack.url) as c:
        with pytest.raises(openai.NotFoundError) as info:
            await c.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    assert stack.sim.stats.requests == 0


async def test_model_id_reaches_that_provider_alone(stack: Any) -> None:
    async with client(stack.url) as c:
        raw = await c.chat.completions.with_raw_response.create(model=GPT, messages=MESSAGES)
    assert raw.headers["x-greenlang-provider"] == "gpt"
    assert raw.parse().model == GPT


async def test_failover_to_second_provider_during_an_outage(stack: Any) -> None:
    stack.sim.faults.add(FaultRule("http_500", model=CLAUDE))
    async with client(stack.url) as c:
        for _ in range(3):
            raw = await c.chat.completions.with_raw_response.create(model="default", messages=MESSAGES)
            assert raw.headers["x-greenlang-provider"] == "gpt"
            assert raw.parse().model == GPT
        stream = await c.chat.completions.create(model="default", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
    assert chunks
    assert chunks[0].model == GPT
    await stack.service.drain()
    summary = stack.service.tracker.get_summary(tenant_id="acme")
    assert summary.total_requests == 4
    assert set(summary.breakdown_by_provider) == {"gpt"}


async def test_total_outage_is_a_server_error_in_openai_shape(stack: Any) -> None:
    stack.sim.faults.add(FaultRule("http_503"))
    async with client(stack.url) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="default", messages=MESSAGES)
    assert info.value.status_code in (502, 503)
    await stack.service.drain()
    assert stack.service.tracker.get_summary(tenant_id="acme").total_requests == 0


async def test_hard_budget_exhausted_is_rate_limit_error_naming_the_tenant(make_stack: Any) -> None:
    budgets = [{"tenant": "acme", "monthly_limit_usd": 0.000001, "hard_limit": True}]
    async with make_stack(budgets=budgets) as stack, client(stack.url) as c:
        with pytest.raises(openai.RateLimitError) as info:
            await c.chat.completions.create(model="default", messages=MESSAGES)
        assert info.value.code == "budget_exceeded"
        assert info.value.type == "insufficient_quota"
        assert "acme" in info.value.message
        assert stack.sim.stats.requests == 0


async def test_route_limited_key_cannot_use_other_routes_or_models(stack: Any) -> None:
    async with client(stack.url, BETA_KEY) as c:
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model="default", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model=CLAUDE, messages=MESSAGES)
        raw = await c.chat.completions.with_raw_response.create(model="cheap", messages=MESSAGES)
        assert raw.headers["x-greenlang-provider"] == "gpt"
        models = await c.models.list()
    assert [m.id for m in models.data] == ["cheap"]
    await stack.service.drain()
    summary = stack.service.tracker.get_summary()
    assert summary.breakdown_by_tenant.keys() == {"beta"}


async def test_bad_request_fields_are_400_without_upstream_call(stack: Any) -> None:
    async with client(stack.url) as c:
        with pytest.raises(openai.BadRequestError) as info:
            await c.chat.completions.create(model="default", messages=MESSAGES, temperature=5)
        assert "temperature" in info.value.message
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model="default", messages=[])
    assert stack.sim.stats.requests == 0
