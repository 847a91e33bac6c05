"""Tool calls and results must pair up, checked as the real APIs check them, with their 400s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from greenlang_llm.simulator import Simulator
from greenlang_llm.simulator.replies import tool_id_error

A_HEADERS = {"x-api-key": "sk-test-canary", "anthropic-version": "2023-06-01"}
O_HEADERS = {"authorization": "Bearer sk-test-canary"}
TOOLS_A = [{"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]
TOOLS_O = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


def a_call(*ids: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [
        {"type": "tool_use", "id": i, "name": "get_time", "input": {}} for i in ids]}


def a_results(*ids: str) -> dict[str, Any]:
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": i, "content": "noon"} for i in ids]}


def o_call(*ids: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": i, "type": "function", "function": {"name": "get_time", "arguments": "{}"}} for i in ids]}


def o_result(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "noon"}


Q = {"role": "user", "content": "what time is it?"}

# ---------------------------------------------------------------- Anthropic


def test_anthropic_paired_calls_and_results_pass() -> None:
    body = {"messages": [Q, a_call("t1", "t2"), a_results("t2", "t1")]}
    assert tool_id_error("anthropic", body) is None


def test_anthropic_result_without_a_call_in_the_previous_message() -> None:
    body = {"messages": [Q, a_call("t1"), {"role": "user", "content": [
        {"type": "text", "text": "here"},
        {"type": "tool_result", "tool_use_id": "t1", "content": "a"},
        {"type": "tool_result", "tool_use_id": "nope", "content": "b"}]}]}
    assert tool_id_error("anthropic", body) == (
        "messages.2.content.2: unexpected `tool_use_id` found in `tool_result` blocks: nope. Each "
        "`tool_result` block must have a corresponding `tool_use` block in the previous message.", None)


def test_anthropic_call_without_results_in_the_next_message() -> None:
    body = {"messages": [Q, a_call("t1", "t2"), a_results("t1"), {"role": "assistant", "content": "x"}]}
    assert tool_id_error("anthropic", body) == (
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t2. Each "
        "`tool_use` block must have a corresponding `tool_result` block in the next message.", None)
    text_after = {"messages": [Q, a_call("t1", "t2"), {"role": "user", "content": "go on"}]}
    error = tool_id_error("anthropic", text_after)
    assert error is not None
    assert "immediately after: t1, t2." in error[0]


def test_anthropic_trailing_call_is_a_prefill() -> None:
    assert tool_id_error("anthropic", {"messages": [Q, a_call("t1")]}) is None


# ---------------------------------------------------------------- OpenAI


def test_openai_paired_calls_and_tool_messages_pass() -> None:
    system = {"role": "system", "content": "s"}
    body = {"messages": [system, Q, o_call("c1", "c2"), o_result("c2"), o_result("c1")]}
    assert tool_id_error("openai", body) is None


def test_openai_tool_message_without_a_preceding_call() -> None:
    assert tool_id_error("openai", {"messages": [Q, o_result("c1")]}) == (
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
        "'tool_calls'.", "messages.[1].role")


def test_openai_tool_message_with_an_unknown_id() -> None:
    assert tool_id_error("openai", {"messages": [Q, o_call("c1"), o_result("c1"), o_result("c9")]}) == (
        "Invalid parameter: 'tool_call_id' of 'c9' not found in 'tool_calls' of previous message.",
        "messages.[3].tool_call_id")


def test_openai_call_without_tool_messages() -> None:
    body = {"messages": [Q, o_call("c1", "c2"), o_result("c1"), {"role": "user", "content": "and?"}]}
    assert tool_id_error("openai", body) == (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: c2", "messages.[3].role")


def test_openai_trailing_call_is_a_prefill() -> None:
    assert tool_id_error("openai", {"messages": [Q, o_call("c1")]}) is None


# ---------------------------------------------------------------- over HTTP


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_anthropic_answers_400_with_its_error_shape(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "max_tokens": 50, "tools": TOOLS_A, "messages": [Q, a_call("t1"), a_results("t2")]}
    status, answer = await post(http, f"{simulator.base_url}/v1/messages", body, A_HEADERS)
    assert status == 400
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["message"].startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t1.")
    good = {**body, "messages": [Q, a_call("t1"), a_results("t1")]}
    assert (await post(http, f"{simulator.base_url}/v1/messages", good, A_HEADERS))[0] == 200


async def test_openai_answers_400_with_its_error_shape(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "tools": TOOLS_O, "messages": [Q, o_result("c1")]}
    status, answer = await post(http, f"{simulator.openai_base_url}/chat/completions", body, O_HEADERS)
    assert status == 400
    assert answer["error"] == {
        "message": "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                   "with 'tool_calls'.",
        "type": "invalid_request_error", "param": "messages.[1].role", "code": None,
    }
