"""The request log: what the upstream received, as it came (``GET``/``DELETE /_sim/requests``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.request_log import RequestLog

A_HEADERS = {
    "x-api-key": "sk-test-canary", "anthropic-version": "2023-06-01", "anthropic-beta": "b1",
    "x-sim-fault": "bad_request", "x-other": "not kept", "user-agent": "tests/2",
}
O_HEADERS = {"authorization": "Bearer sk-test-canary", "user-agent": "tests/1"}
A_BODY = {
    "model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "Hello"}], "odd": [1]}
O_BODY = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_requests_are_logged_oldest_first_with_their_body_and_some_headers(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    url = simulator.base_url
    assert (await call(http, "POST", f"{url}/v1/messages", A_BODY, A_HEADERS))[0] == 400  # the fault
    assert (await call(http, "POST", f"{url}/v1/chat/completions", O_BODY, O_HEADERS))[0] == 200
    count_body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    assert (await call(http, "POST", f"{url}/v1/messages/count_tokens", count_body, A_HEADERS))[0] == 200
    status, log = await call(http, "GET", f"{url}/_sim/requests")
    assert status == 200
    first, second, third = log["requests"]
    assert first == {
        "path": "/v1/messages", "model": "claude-x", "body": A_BODY,
        "headers": {"anthropic-version": "2023-06-01", "anthropic-beta": "b1",
                    "content-type": "application/json", "user-agent": "tests/2",
                    "x-sim-fault": "bad_request"},
    }
    assert second["path"] == "/v1/chat/completions"
    assert second["model"] == "gpt-x"
    assert second["body"] == O_BODY
    assert second["headers"] == {"content-type": "application/json", "user-agent": "tests/1"}
    assert third["path"] == "/v1/messages/count_tokens"
    assert simulator.app.request_log.entries() == log["requests"]
    _, newest = await call(http, "GET", f"{url}/_sim/requests?last=1")
    assert newest["requests"] == [third]
    assert (await call(http, "GET", f"{url}/_sim/requests?last=x"))[0] == 400


async def test_delete_and_reset_empty_the_log(simulator: Simulator, http: aiohttp.ClientSession) -> None:
    url = simulator.base_url
    await call(http, "POST", f"{url}/v1/chat/completions", O_BODY, O_HEADERS)
    assert await call(http, "DELETE", f"{url}/_sim/requests") == (200, {"requests": []})
    assert len(simulator.app.request_log) == 0
    await call(http, "POST", f"{url}/v1/chat/completions", O_BODY, O_HEADERS)
    assert len(simulator.app.request_log) == 1
    await call(http, "POST", f"{url}/_sim/reset")
    assert (await call(http, "GET", f"{url}/_sim/requests"))[1] == {"requests": []}


async def test_bad_json_and_missing_keys_are_not_logged(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    url = simulator.base_url
    async with http.post(f"{url}/v1/chat/completions", data=b"{nope", headers=O_HEADERS) as response:
        assert response.status == 400
    assert (await call(http, "POST", f"{url}/v1/chat/completions", O_BODY, {}))[0] == 401
    assert simulator.app.request_log.entries() == []


async def test_the_log_keeps_the_configured_number_of_requests(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(request_log_size=2)) as sim:
        for i in range(3):
            body = {**O_BODY, "messages": [{"role": "user", "content": f"n{i}"}]}
            await call(http, "POST", f"{sim.openai_base_url}/chat/completions", body, O_HEADERS)
        assert [e["body"]["messages"][0]["content"] for e in sim.app.request_log] == ["n1", "n2"]


def test_the_log_keeps_the_body_object_itself() -> None:
    log = RequestLog(3)
    body = {"model": "m"}
    log.add("/v1/messages", {"anthropic-version": "v", "x-api-key": "secret"}, body)
    log.add("/v1/messages", {}, ["not", "an", "object"])
    assert log[0]["body"] is body
    assert log[0]["headers"] == {"anthropic-version": "v"}
    assert log[1]["model"] is None
    assert log.entries(0) == []
    assert log.entries(5) == log.entries()
    assert log.size == 3
