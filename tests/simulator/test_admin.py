"""Admin endpoints, key handling, request validation and stream bookkeeping, over plain HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig
from greenlang_llm.simulator.config import hash_key

A_HEADERS = {"x-api-key": "sk-test-canary", "anthropic-version": "2023-06-01"}
O_HEADERS = {"authorization": "Bearer sk-test-canary"}
A_BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hello there"}]}
O_BODY = {"model": "m", "messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_faults_posted_at_run_time_apply_with_their_rate_and_can_be_cleared(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    url = simulator.base_url
    status, body = await post(http, f"{url}/_sim/faults", {"kind": "503", "times": 2, "model": "m"}, {})
    assert status == 200
    assert body["faults"][0]["kind"] == "http_503"
    statuses = [(await post(http, f"{url}/v1/chat/completions", O_BODY, O_HEADERS))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    await post(http, f"{url}/_sim/faults", {"faults": [{"kind": "down"}]}, {})
    assert (await post(http, f"{url}/v1/messages", A_BODY, A_HEADERS))[0] == 503
    async with http.delete(f"{url}/_sim/faults") as response:
        assert (await response.json())["faults"] == []
    assert (await post(http, f"{url}/v1/messages", A_BODY, A_HEADERS))[0] == 200
    assert (await post(http, f"{url}/_sim/faults", {"kind": "nope"}, {}))[0] == 400


async def test_seeded_rules_give_the_same_statuses_after_reset(
    http: aiohttp.ClientSession,
) -> None:
    config = SimulatorConfig.from_dict({"seed": 3, "faults": [{"kind": "429", "rate": 0.5}]})
    async with Simulator(config) as sim:
        url = f"{sim.base_url}/v1/chat/completions"
        first = [(await post(http, url, O_BODY, O_HEADERS))[0] for _ in range(12)]
        async with http.post(f"{sim.base_url}/_sim/reset") as response:
            assert response.status == 200
        assert sim.stats.requests == 0
        second = [(await post(http, url, O_BODY, O_HEADERS))[0] for _ in range(12)]
    assert first == second
    assert set(first) == {200, 429}


async def test_stats_endpoint_reports_paths_statuses_models_tokens(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    await post(http, f"{simulator.base_url}/v1/messages", A_BODY, A_HEADERS)
    await post(http, f"{simulator.base_url}/v1/messages", A_BODY, {**A_HEADERS, "x-sim-fault": "529"})
    async with http.get(f"{simulator.base_url}/_sim/stats") as response:
        stats = await response.json()
    assert stats["by_status"] == {"200": 1, "529": 1}
    assert stats["by_model"] == {"m": 2}
    assert stats["faults"] == {"overloaded": 1}
    assert stats["tokens"] == {"input": 9, "output": 5}


async def test_only_listed_key_hashes_are_accepted_and_keys_never_echo(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(valid_keys_sha256=frozenset({hash_key("sk-test-good")}))
    async with Simulator(config) as sim:
        url = f"{sim.base_url}/v1/chat/completions"
        assert (await post(http, url, O_BODY, {"authorization": "Bearer sk-test-good"}))[0] == 200
        status, body = await post(http, url, O_BODY, {"authorization": "Bearer sk-test-canary-bad"})
        assert status == 401
        assert "canary" not in str(body)
        status, body = await post(http, f"{sim.base_url}/v1/messages", A_BODY, {"anthropic-version": "x"})
        assert (status, body["error"]["type"]) == (401, "authentication_error")
        assert str(config).count("sk-test") == 0


async def test_request_shape_errors_are_the_apis_400(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    url = simulator.base_url
    status, body = await post(http, f"{url}/v1/messages", {**A_BODY, "max_tokens": 0}, A_HEADERS)
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")
    assert body["error"]["message"].startswith("max_tokens")
    status, body = await post(http, f"{url}/v1/messages", A_BODY, {"x-api-key": "k"})
    assert "anthropic-version" in body["error"]["message"]
    async with http.post(f"{url}/v1/chat/completions", data=b"{nope", headers=O_HEADERS) as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    status, body = await post(http, f"{url}/v1/chat/completions", {**O_BODY, "temperature": 3}, O_HEADERS)
    assert (status, body["error"]["param"]) == (400, "temperature")


async def test_strict_models_and_context_window(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(strict_models=True, models={"tiny": ModelBehaviour(context_window=5)})
    async with Simulator(config) as sim:
        status, body = await post(http, f"{sim.base_url}/v1/chat/completions", O_BODY, O_HEADERS)
        assert (status, body["error"]["code"]) == (404, "model_not_found")
        status, body = await post(http, f"{sim.base_url}/v1/messages", {**A_BODY, "model": "tiny"}, A_HEADERS)
        assert status == 400
        assert body["error"]["message"] == "prompt is too long: 9 tokens > 5 maximum"


async def test_a_client_that_disconnects_mid_stream_closes_the_stream(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(defaults=ModelBehaviour(reply_tokens=200, token_ms=10))
    async with Simulator(config) as sim:
        body = {**O_BODY, "stream": True}
        response = await http.post(f"{sim.base_url}/v1/chat/completions", json=body, headers=O_HEADERS)
        await response.content.readuntil(b"\n\n")
        assert sim.stats.open_streams == 1
        response.close()
        for _ in range(200):
            if sim.stats.streams["client_closed"]:
                break
            await asyncio.sleep(0.01)
        assert sim.stats.snapshot()["streams"]["client_closed"] == 1
        assert sim.stats.open_streams == 0
        assert sim.stats.streams["completed"] == 0


async def test_model_behaviour_can_change_at_run_time(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    url = simulator.base_url
    status, body = await post(
        http, f"{url}/_sim/models", {"m": {"reply_tokens": 2, "cache_read_tokens": 7}}, {}
    )
    assert status == 200
    assert body["m"]["reply_tokens"] == 2
    status, body = await post(http, f"{url}/v1/chat/completions", O_BODY, O_HEADERS)
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (16, 2)
    assert (await post(http, f"{url}/_sim/models", {"m": {"reply_tokens": -1}}, {}))[0] == 400
