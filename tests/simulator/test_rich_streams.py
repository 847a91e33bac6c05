"""Stream faults apply per frame to streams beyond text: a thinking stream broken after N frames,
a tool-call stream cut inside its arguments, and the stats count what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from greenlang_llm.simulator import Simulator

A_HEADERS = {"x-api-key": "sk-test-canary", "anthropic-version": "2023-06-01"}
O_HEADERS = {"authorization": "Bearer sk-test-canary"}
TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def stream_body(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> bytes:
    chunks = []
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status == 200
        try:
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
        except aiohttp.ClientPayloadError:
            pass  # the cut
    return b"".join(chunks)


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for event in raw.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: {"):
                out.append(orjson.loads(line[6:]))
    return out


async def test_a_thinking_stream_errors_after_three_frames(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "max_tokens": 2000, "stream": True, "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}}
    headers = {**A_HEADERS, "x-sim-fault": "stream_error;after=3"}
    got = events(await stream_body(http, f"{simulator.base_url}/v1/messages", body, headers))
    kinds = [e["type"] for e in got]
    assert kinds == ["message_start", "ping", "content_block_start",
                     "content_block_delta", "content_block_delta", "content_block_delta", "error"]
    assert got[2]["content_block"]["type"] == "thinking"
    assert all(e["delta"]["type"] == "thinking_delta" for e in got[3:6])
    assert simulator.stats.snapshot()["tokens"]["output"] == 3
    assert simulator.stats.streams["errored"] == 1


async def test_a_tool_call_stream_cut_inside_its_arguments(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "stream": True, "tools": [TOOL], "messages": [{"role": "user", "content": "time?"}]}
    headers = {**O_HEADERS, "x-sim-fault": "stream_cut;after=2"}
    got = events(await stream_body(http, f"{simulator.openai_base_url}/chat/completions", body, headers))
    deltas = [e["choices"][0]["delta"] for e in got]
    assert deltas[0]["role"] == "assistant"
    opening, piece = deltas[1]["tool_calls"][0], deltas[2]["tool_calls"][0]
    function = opening["function"]
    assert (opening["index"], function["name"], function["arguments"]) == (0, "get_time", "")
    assert opening["id"].startswith("call_sim")
    assert piece["function"]["arguments"].startswith('{"tz":')  # the first half of the arguments
    assert len(got) == 3  # no finish chunk, no [DONE]
    assert simulator.stats.streams["cut"] == 1


async def test_a_whole_tool_call_stream_counts_its_output_tokens(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "stream": True, "tools": [TOOL], "messages": [{"role": "user", "content": "time?"}],
            "stream_options": {"include_usage": True}}
    raw = await stream_body(http, f"{simulator.openai_base_url}/chat/completions", body, O_HEADERS)
    got = events(raw)
    assert raw.endswith(b"data: [DONE]\n\n")
    assert got[-2]["choices"][0]["finish_reason"] == "tool_calls"
    usage = got[-1]["usage"]
    assert simulator.stats.snapshot()["tokens"] == {"input": usage["prompt_tokens"],
                                                    "output": usage["completion_tokens"]}
