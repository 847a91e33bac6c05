"""The official anthropic SDK against the gateway, which talks to the simulator."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from gateway_support import ACME_KEY, BETA_KEY, CLAUDE, GPT

from greenlang_llm.simulator.faults import FaultRule

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


def client(url: str, key: str = ACME_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=20)


async def test_plain_message_answered_by_claude(stack: Any) -> None:
    async with client(stack.url) as c:
        raw = await c.messages.with_raw_response.create(model="default", max_tokens=200, messages=MESSAGES)
        message = await raw.parse()
    assert message.model == CLAUDE
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert raw.headers["x-greenlang-provider"] == "claude"
    assert float(raw.headers["x-greenlang-cost-usd"]) > 0
    await stack.service.drain()
    assert stack.service.tracker.get_summary(tenant_id="acme").total_requests == 1


async def test_openai_answer_translated_to_anthropic_shape(stack: Any) -> None:
    async with client(stack.url) as c:
        raw = await c.messages.with_raw_response.create(model=GPT, max_tokens=200, messages=MESSAGES)
        message = await raw.parse()
        cut = await c.messages.create(model=GPT, max_tokens=3, messages=MESSAGES)
    assert raw.headers["x-greenlang-provider"] == "gpt"
    assert message.model == GPT
    assert message.stop_reason == "end_turn"  # OpenAI "stop"
    assert cut.stop_reason == "max_tokens"  # OpenAI "length"
    assert cut.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


async def test_stream_accumulates_to_plain_reply_with_usage(stack: Any) -> None:
    async with client(stack.url) as c:
        plain = await c.messages.create(model="default", max_tokens=200, messages=MESSAGES)
        async with c.messages.stream(model="default", max_tokens=200, messages=MESSAGES) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
    assert text == plain.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    await stack.service.drain()
    summary = stack.service.tracker.get_summary(tenant_id="acme")
    assert summary.total_requests == 2
    assert summary.total_tokens == 2 * (plain.usage.input_tokens + plain.usage.output_tokens)


async def test_errors_surface_as_the_sdks_own_classes(stack: Any) -> None:
    async with client(stack.url, key="sk-nope") as c:
        with pytest.raises(anthropic.AuthenticationError):
            await c.messages.create(model="default", max_tokens=10, messages=MESSAGES)
    async with client(stack.url) as c:
        with pytest.raises(anthropic.NotFoundError) as info:
            await c.messages.create(model="nope", max_tokens=10, messages=MESSAGES)
        assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError):
            await c.messages.create(model="default", max_tokens=0, messages=MESSAGES)
    assert stack.sim.stats.requests == 0


async def test_key_isolation_for_anthropic_callers(stack: Any) -> None:
    async with client(stack.url, BETA_KEY) as c:
        with pytest.raises(anthropic.NotFoundError):
            await c.messages.create(model="default", max_tokens=10, messages=MESSAGES)


async def test_failover_mid_outage_then_budget_refusal(make_stack: Any) -> None:
    budgets = [{"tenant": "acme", "monthly_limit_usd": 0.02, "hard_limit": True}]
    async with make_stack(budgets=budgets) as stack, client(stack.url) as c:
        stack.sim.faults.add(FaultRule("overloaded", model=CLAUDE))
        raw = await c.messages.with_raw_response.create(model="default", max_tokens=100, messages=MESSAGES)
        assert raw.headers["x-greenlang-provider"] == "gpt"
        assert (await raw.parse()).model == GPT
        # A worst case far above what is left of the 0.02 USD budget: refused before any upstream call.
        before = stack.sim.stats.requests
        with pytest.raises(anthropic.RateLimitError) as info:
            await c.messages.create(model="default", max_tokens=100_000, messages=MESSAGES)
        assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert "acme" in info.value.message
        assert stack.sim.stats.requests == before


async def test_all_overloaded_is_529_for_anthropic_callers(stack: Any) -> None:
    stack.sim.faults.add(FaultRule("overloaded"))
    async with client(stack.url) as c:
        with pytest.raises(anthropic.APIStatusError) as info:
            await c.messages.create(model="default", max_tokens=10, messages=MESSAGES)
    assert info.value.status_code == 529
