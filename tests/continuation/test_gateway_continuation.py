"""Mid-stream continuation through the gateway, with the official openai SDK as the client.

The gateway runs on a loopback port in front of the simulator; two providers serve the same model
name over the two APIs, so a continuation on the other one yields exactly the rest of the reply.
Each scenario checks the answer the SDK assembled, the usage chunk (``include_usage``) and one
ledger record per upstream call that produced tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import pytest_asyncio
from continuation_support import MODEL, WORDS
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

PROMPT = [{"role": "user", "content": "Tell me a long story about rivers"}]
TIMEOUT = 0.3


def config(sim: Simulator, durable: bool = False) -> dict[str, Any]:
    def provider(name: str, api: str, model: str = MODEL) -> dict[str, Any]:
        base = sim.base_url if api == "anthropic" else sim.openai_base_url
        return {"name": name, "type": api, "model_id": model, "base_url": base, "api_key_env": "SIM_KEY",
                "max_retries": 0}

    return {
        "server": {"database_url": "sqlite:///:memory:", "durable_replies": durable},
        "providers": [provider("claude", "anthropic"), provider("gpt", "openai"),
                      provider("refuser", "openai", "refuser")],
        "routes": [
            {"name": "story", "providers": ["claude", "gpt"]},
            {"name": "refusing", "providers": ["claude", "refuser", "gpt"]},
            {"name": "off", "providers": ["claude", "gpt"], "continue_on_failure": False},
            {"name": "guarded", "providers": ["claude", "gpt"], "idle_timeout": TIMEOUT,
             "first_token_timeout": TIMEOUT},
        ],
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "continuation"}],
        "budgets": [{"tenant": "acme", "monthly_limit_usd": 1000.0, "hard_limit": True}],
    }


@dataclass
class Gateway:
    sim: Simulator
    service: Any
    url: str


@pytest_asyncio.fixture(params=[False, True], ids=["queued", "durable_replies"])
async def gateway(sim: Simulator, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    app, service = make_app(config(sim, durable=request.param), providers={}, env=SIM_ENV)
    async with serve(app) as url:
        yield Gateway(sim, service, url)


@dataclass
class Answer:
    text: str
    usage: Any
    request_id: str
    provider: str


def stream_with_sdk(url: str, route: str) -> Answer:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0, timeout=20)
    with client.chat.completions.with_streaming_response.create(
        model=route, messages=PROMPT, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
        max_completion_tokens=200,
    ) as response:
        request_id = response.headers["x-request-id"]
        provider = response.headers["x-greenlang-provider"]
        text, usage = [], None
        for chunk in response.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage = chunk.usage
    client.close()
    return Answer("".join(text), usage, request_id, provider)


async def expected_answer(gw: Gateway) -> str:
    from greenlang_llm._types import GenerationRequest
    from greenlang_llm.providers.openai_provider import OpenAIProvider

    async with OpenAIProvider(MODEL, api_key="sk-test-canary", max_retries=0,
                              base_url=gw.sim.openai_base_url) as provider:
        text = (await provider.generate(GenerationRequest(messages=PROMPT, max_tokens=200))).text
    assert len(text.split()) == WORDS
    return text


async def records(gw: Gateway, request_id: str) -> list[Any]:
    await gw.service.drain()
    rows = [r for r in gw.service.tracker.ledger.iter_records(0, 2**62)
            if r.request_id == request_id or r.request_id.startswith(f"{request_id}.")]
    return sorted(rows, key=lambda r: r.request_id)


async def assert_continued(gw: Gateway, answer: Answer, expected: str, cut_after: int) -> None:
    assert answer.text == expected
    assert answer.provider == "claude"  # the headers went out with the first provider's text
    rows = await records(gw, answer.request_id)
    assert [(r.request_id, r.provider) for r in rows] == [(answer.request_id, "claude"),
                                                          (f"{answer.request_id}.2", "gpt")]
    assert rows[1].output_tokens == WORDS - cut_after  # reported by the fallback
    assert rows[0].output_tokens >= cut_after  # the cut call, counted locally
    usage = answer.usage
    assert usage is not None
    assert usage.completion_tokens == sum(r.output_tokens for r in rows)
    assert usage.prompt_tokens == sum(r.input_tokens for r in rows)


async def test_a_stream_cut_after_40_words_is_finished_by_the_fallback(gateway: Gateway) -> None:
    expected = await expected_answer(gateway)
    gateway.sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    answer = await asyncio.to_thread(stream_with_sdk, gateway.url, "story")
    await assert_continued(gateway, answer, expected, 40)


async def test_a_stall_after_20_words_is_finished_by_the_fallback(gateway: Gateway) -> None:
    expected = await expected_answer(gateway)
    gateway.sim.faults.add(FaultRule("stall", path="/v1/messages", after=20, delay=30))
    answer = await asyncio.to_thread(stream_with_sdk, gateway.url, "guarded")
    await assert_continued(gateway, answer, expected, 20)


async def test_a_slow_first_token_fails_over_before_the_first_byte(gateway: Gateway) -> None:
    expected = await expected_answer(gateway)
    gateway.sim.faults.add(FaultRule("slow", path="/v1/messages", delay=20))
    answer = await asyncio.to_thread(stream_with_sdk, gateway.url, "guarded")
    assert answer.text == expected
    assert answer.provider == "gpt"
    rows = await records(gateway, answer.request_id)
    assert [r.provider for r in rows] == ["gpt"]
    assert answer.usage.completion_tokens == WORDS


async def test_a_prefill_rejecting_provider_is_restarted_and_its_400_never_reaches_the_client(
        gateway: Gateway) -> None:
    # issue 19: the refuser is asked again without the prefill (no longer skipped); it serves another
    # model, so its fresh answer does not begin with the delivered text and gpt finishes the stream
    expected = await expected_answer(gateway)
    gateway.sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    gateway.sim.faults.add(FaultRule("prefill", model="refuser"))
    answer = await asyncio.to_thread(stream_with_sdk, gateway.url, "refusing")
    assert answer.text == expected
    assert gateway.sim.stats.faults["prefill"] == 1
    rows = await records(gateway, answer.request_id)
    # the refused prefill cost nothing; the restart was paid for and is booked to the refuser
    assert [(r.request_id, r.provider) for r in rows] == [
        (answer.request_id, "claude"), (f"{answer.request_id}.2", "refuser"),
        (f"{answer.request_id}.3", "gpt")]
    assert rows[1].output_tokens > 0
    assert rows[2].output_tokens == WORDS - 40
    assert answer.usage.completion_tokens == sum(r.output_tokens for r in rows)


async def test_continue_on_failure_off_ends_with_the_error_and_one_record(gateway: Gateway) -> None:
    gateway.sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=40))
    with pytest.raises(openai.APIError):
        await asyncio.to_thread(stream_with_sdk, gateway.url, "off")
    await gateway.service.drain()
    rows = list(gateway.service.tracker.ledger.iter_records(0, 2**62))
    assert [r.provider for r in rows] == ["claude"]
    assert gateway.sim.stats.by_path.get("/v1/chat/completions", 0) == 0
