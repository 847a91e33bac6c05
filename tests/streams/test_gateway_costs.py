"""Gateway: a streamed request is billed exactly like the same request unstreamed, in the ledger and
in the usage the caller reads; the usage travels the way each API carries it.

The 20 request shapes, each sent plain and streamed through the gateway to the simulator, for both
client APIs against both upstream APIs (cache tokens included): the two ledger records agree in every
token count and every cost, neither is estimated, and the usage in the stream equals the plain body's.
"""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from streams_support import (
    CLAUDE,
    GPT,
    SHAPES,
    api_request,
    gateway_stack,
    ledger_rows,
    running_sim,
    sse_events,
    stream_text,
    usage_dropping_proxy,
)

from greenlang_llm._types import GenerationRequest

FIELDS = (
    "provider",
    "model_id",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "input_cost_nanos",
    "output_cost_nanos",
    "total_cost_nanos",
    "estimated",
)


def _usage_of(api: str, plain: dict[str, object]) -> dict[str, int]:
    usage = plain["usage"]
    assert isinstance(usage, dict)
    if api == "anthropic":
        return {
            "input": usage["input_tokens"],
            "output": usage["output_tokens"],
            "cache_read": usage.get("cache_read_input_tokens") or 0,
            "cache_write": usage.get("cache_creation_input_tokens") or 0,
        }
    details = usage.get("prompt_tokens_details") or {}
    return {
        "input": usage["prompt_tokens"],
        "output": usage["completion_tokens"],
        "cache_read": details.get("cached_tokens") or 0,
        "cache_write": details.get("cache_write_tokens") or 0,
    }


def _stream_usage(api: str, events: list[tuple[str | None, object]]) -> dict[str, int]:
    if api == "anthropic":
        start = next(d for n, d in events if n == "message_start")["message"]["usage"]  # type: ignore[index]
        delta = next(d for n, d in events if n == "message_delta")["usage"]  # type: ignore[index]
        return {
            "input": delta.get("input_tokens", start["input_tokens"]),
            "output": delta["output_tokens"],
            "cache_read": delta.get("cache_read_input_tokens") or 0,
            "cache_write": delta.get("cache_creation_input_tokens") or 0,
        }
    final = [d for _, d in events if isinstance(d, dict) and d.get("usage")]
    assert len(final) == 1
    assert final[0]["choices"] == []
    return _usage_of("openai", final[0])  # type: ignore[arg-type]


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
@pytest.mark.parametrize("client_api", ["anthropic", "openai"])
async def test_streamed_and_plain_requests_have_identical_ledger_records_for_twenty_shapes(
    client_api: str, upstream: str
) -> None:
    async with running_sim() as sim, gateway_stack(sim) as stack, aiohttp.ClientSession(stack.url) as http:
        pairs = []
        for shape in SHAPES:
            model, request = shape.build(upstream)
            answers = []
            for stream in (False, True):
                path, headers, body = api_request(client_api, model, request, stream)
                async with http.post(path, json=body, headers=headers) as resp:
                    raw = await resp.read()
                    assert resp.status == 200, (shape.name, raw[:300])
                    answers.append((resp.headers["x-request-id"], raw))
            (plain_id, plain_raw), (stream_id, stream_raw) = answers
            plain = orjson.loads(plain_raw)
            text = (
                plain["content"][0]["text"]
                if client_api == "anthropic"
                else plain["choices"][0]["message"]["content"]
            )
            events = sse_events(stream_raw)
            assert stream_text(client_api, events) == text, shape.name
            assert _stream_usage(client_api, events) == _usage_of(client_api, plain), shape.name
            pairs.append((shape.name, plain_id, stream_id))
        await stack.service.drain()
        rows = ledger_rows(stack.service)
    assert len(rows) == 2 * len(SHAPES)
    for name, plain_id, stream_id in pairs:
        plain_row, stream_row = rows[plain_id], rows[stream_id]
        assert [getattr(stream_row, f) for f in FIELDS] == [getattr(plain_row, f) for f in FIELDS], name
        assert plain_row.total_cost_nanos > 0, name
        assert not stream_row.estimated, name
    assert any(rows[p].cache_read_tokens > 0 and rows[s].cache_write_tokens > 0 for _, p, s in pairs)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_openai_streams_send_the_usage_chunk_only_when_the_client_asked(include_usage: bool) -> None:
    request = GenerationRequest(prompt="Hello there")
    async with running_sim() as sim, gateway_stack(sim) as stack, aiohttp.ClientSession(stack.url) as http:
        for model in (CLAUDE, GPT):
            path, headers, body = api_request("openai", model, request, True, include_usage=include_usage)
            async with http.post(path, json=body, headers=headers) as resp:
                events = sse_events(await resp.read())
            chunks = [d for _, d in events if isinstance(d, dict)]
            with_usage = [c for c in chunks if c.get("usage")]
            assert events[-1] == (None, "[DONE]")
            assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
            if include_usage:
                assert len(with_usage) == 1
                assert with_usage[0] is chunks[-1]
                assert chunks[-1]["choices"] == []
                assert all("usage" in c for c in chunks)  # null on the others, as the API does
            else:
                assert with_usage == []
                assert all("usage" not in c for c in chunks)
        await stack.service.drain()
        rows = ledger_rows(stack.service)
    assert len(rows) == 2
    assert all(r.total_cost_nanos > 0 and not r.estimated for r in rows.values())


async def test_anthropic_streams_carry_usage_in_message_start_and_message_delta() -> None:
    request = GenerationRequest(prompt="Hello there")
    async with running_sim() as sim, gateway_stack(sim) as stack, aiohttp.ClientSession(stack.url) as http:
        path, headers, body = api_request("anthropic", CLAUDE, request, False)
        async with http.post(path, json=body, headers=headers) as resp:
            plain = orjson.loads(await resp.read())["usage"]
        path, headers, body = api_request("anthropic", CLAUDE, request, True)
        async with http.post(path, json=body, headers=headers) as resp:
            events = sse_events(await resp.read())
    names = [n for n, _ in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]["usage"]
    delta = events[-2][1]["usage"]
    # message_start goes out before the upstream has counted anything: a local count, never 0;
    # message_delta is cumulative and carries the upstream's exact counts (what the SDK keeps)
    assert start["input_tokens"] > 0
    assert start["output_tokens"] <= 1
    assert delta["output_tokens"] == plain["output_tokens"]
    assert delta["input_tokens"] == plain["input_tokens"]


async def test_an_upstream_ignoring_include_usage_is_recorded_with_an_estimate_never_zero() -> None:
    request = GenerationRequest(prompt="Hello there, how are you today?")
    async with running_sim() as sim, usage_dropping_proxy(sim.openai_base_url) as proxy:
        compat = {
            "name": "compat",
            "type": "openai",
            "model_id": "gpt-4.1-mini",
            "base_url": proxy,
            "api_key_env": "SIM_KEY",
            "max_retries": 0,
        }
        async with (
            gateway_stack(sim, extra_providers=[compat]) as stack,
            aiohttp.ClientSession(stack.url) as http,
        ):
            for api in ("openai", "anthropic"):
                path, headers, body = api_request(api, "gpt-4.1-mini", request, True)
                async with http.post(path, json=body, headers=headers) as resp:
                    events = sse_events(await resp.read())
                    assert resp.status == 200
                    assert stream_text(api, events)
            await stack.service.drain()
            rows = list(ledger_rows(stack.service).values())
    assert len(rows) == 2
    for row in rows:
        assert row.estimated
        assert row.output_tokens > 0
        assert row.input_tokens > 0
        assert row.total_cost_nanos > 0
