"""Issue 19, part 2: a stream cut on the primary and continued on a fallback that rejects the prefill,
through the gateway, with the official ``openai`` and ``anthropic`` SDKs as clients (streamed).

The fallback answers the prefill request with the simulator's ``prefill`` 400 and is asked again
without it. Serving the same model, its fresh answer begins with the delivered text: the client gets
exactly the full answer. Serving another model (another text), it does not: the stream ends with the
API's error event for the original cut, never the prefill 400 and never a clean end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio
from continuation_support import MODEL, WORDS
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.faults import FaultRule

PROMPT = [{"role": "user", "content": "Tell me a long story about rivers"}]
CUT = 12


def config(sim: Simulator) -> dict[str, Any]:
    def provider(name: str, api: str, model: str = MODEL) -> dict[str, Any]:
        base = sim.base_url if api == "anthropic" else sim.openai_base_url
        return {"name": name, "type": api, "model_id": model, "base_url": base, "api_key_env": "SIM_KEY",
                "max_retries": 0}

    return {
        "server": {"database_url": "sqlite:///:memory:"},
        "providers": [provider("claude", "anthropic"), provider("gpt", "openai"),
                      provider("other", "openai", "other")],
        "routes": [{"name": "same", "providers": ["claude", "gpt"]},
                   {"name": "different", "providers": ["claude", "other"]}],
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "prefill"}],
        "budgets": [{"tenant": "acme", "monthly_limit_usd": 1000.0, "hard_limit": True}],
    }


@dataclass
class Gateway:
    sim: Simulator
    service: Any
    url: str


@pytest_asyncio.fixture
async def gateway(sim: Simulator) -> AsyncIterator[Gateway]:
    sim.faults.add(FaultRule("stream_cut", path="/v1/messages", after=CUT))
    sim.faults.add(FaultRule("prefill", path="/v1/chat/completions"))
    app, service = make_app(config(sim), providers={}, env=SIM_ENV)
    async with serve(app) as url:
        yield Gateway(sim, service, url)


async def expected_answer(sim: Simulator) -> str:
    from greenlang_llm._types import GenerationRequest
    from greenlang_llm.providers.openai_provider import OpenAIProvider

    async with OpenAIProvider(MODEL, api_key="sk-test-canary", max_retries=0,
                              base_url=sim.openai_base_url) as provider:
        text = (await provider.generate(GenerationRequest(messages=PROMPT, max_tokens=200))).text
    assert len(text.split()) == WORDS
    return text


def stream_openai(url: str, route: str) -> tuple[str, BaseException | None]:
    """(text the SDK assembled, the error that ended the stream or None)."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0, timeout=20)
    text: list[str] = []
    try:
        stream = client.chat.completions.create(model=route, messages=PROMPT, stream=True,  # type: ignore[arg-type]
                                                max_completion_tokens=200)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    except openai.APIError as exc:
        return "".join(text), exc
    finally:
        client.close()
    return "".join(text), None


def stream_anthropic(url: str, route: str) -> tuple[str, BaseException | None]:
    client = anthropic.Anthropic(base_url=url, api_key=ACME_KEY, max_retries=0, timeout=20)
    text: list[str] = []
    try:
        with client.messages.stream(model=route, messages=PROMPT, max_tokens=200) as stream:  # type: ignore[arg-type]
            for delta in stream.text_stream:
                text.append(delta)
    except anthropic.APIError as exc:
        return "".join(text), exc
    finally:
        client.close()
    return "".join(text), None


CLIENTS = {"openai": stream_openai, "anthropic": stream_anthropic}


@pytest.mark.parametrize("api", sorted(CLIENTS))
async def test_the_fallbacks_fresh_answer_is_relayed_from_where_the_client_is(
        gateway: Gateway, api: str) -> None:
    expected = await expected_answer(gateway.sim)
    text, error = await asyncio.to_thread(CLIENTS[api], gateway.url, "same")
    assert error is None
    assert text == expected  # exactly the full answer, no repeated words
    assert gateway.sim.stats.faults["prefill"] == 1
    await gateway.service.drain()
    rows = sorted(gateway.service.tracker.ledger.iter_records(0, 2**62), key=lambda r: r.request_id)
    assert [r.provider for r in rows] == ["claude", "gpt"]
    assert rows[1].output_tokens == WORDS  # the restarted call's full answer is booked to its provider


@pytest.mark.parametrize("api", sorted(CLIENTS))
async def test_a_fresh_answer_that_does_not_begin_with_the_delivered_text_ends_with_the_apis_error_event(
        gateway: Gateway, api: str) -> None:
    expected = await expected_answer(gateway.sim)
    text, error = await asyncio.to_thread(CLIENTS[api], gateway.url, "different")
    assert error is not None  # never a clean end
    assert text == " ".join(expected.split()[:CUT])  # the cut's text, nothing of the other answer
    assert getattr(error, "status_code", None) != 400  # the error event, not the prefill's 400
    assert "prefill" not in str(error).lower()
    assert gateway.sim.stats.faults["prefill"] == 1
    await gateway.service.drain()
    rows = sorted(gateway.service.tracker.ledger.iter_records(0, 2**62), key=lambda r: r.request_id)
    assert [r.provider for r in rows] == ["claude", "other"]  # both upstream calls that produced are booked


async def test_on_the_anthropic_api_the_end_is_an_error_event_not_message_stop(gateway: Gateway) -> None:
    import httpx2

    body = {"model": "different", "max_tokens": 200, "stream": True, "messages": PROMPT}
    headers = {"x-api-key": ACME_KEY, "anthropic-version": "2023-06-01"}
    async with httpx2.AsyncClient(timeout=20) as client:
        response = await client.post(f"{gateway.url}/v1/messages", json=body, headers=headers)
    lines = response.text.splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert response.status_code == 200
    assert events[-1] == "error"
    assert "message_stop" not in events
    assert "invalid_request_error" not in response.text
