"""Core types: request validation names the bad field; usage follows the token semantics."""

from __future__ import annotations

from typing import Any

import pytest

from greenlang_llm import (
    GenerationRequest,
    GenerationResponse,
    InvalidRequestError,
    ProviderHealth,
    StreamChunk,
    TokenUsage,
)


def test_defaults_match_the_design() -> None:
    request = GenerationRequest(prompt="hi")
    assert request.max_tokens == 1024
    assert request.temperature is None
    assert request.system is None
    assert request.stop is None
    assert request.metadata == {}
    assert request.timeout is None
    assert GenerationRequest(prompt="x").metadata is not request.metadata  # no shared mutable default


def test_prompt_is_one_user_message_after_the_conversation() -> None:
    request = GenerationRequest(
        prompt="And now?",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}],
    )
    assert request.to_messages() == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hey"},
        {"role": "user", "content": "And now?"},
    ]
    assert GenerationRequest(prompt="Q").to_messages() == [{"role": "user", "content": "Q"}]


def test_blank_prompt_next_to_messages_adds_no_empty_turn() -> None:
    request = GenerationRequest(prompt="   ", messages=[{"role": "user", "content": "Hi"}])
    assert request.to_messages() == [{"role": "user", "content": "Hi"}]


def test_content_blocks_are_accepted_and_normalised() -> None:
    blocks = [{"type": "text", "text": "Describe"}, {"type": "image", "source": {"type": "url", "url": "x"}}]
    request = GenerationRequest(messages=[{"role": "user", "content": blocks}])
    assert request.to_messages()[0]["content"] == [
        {"type": "text", "text": "Describe"}, {"type": "image", "url": "x"}]
    assert request.rich


def test_stop_string_becomes_a_list() -> None:
    assert GenerationRequest(prompt="x", stop="END").stop == ["END"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "prompt or messages"),
        ({"prompt": ""}, "prompt or messages"),
        ({"prompt": "   \n"}, "prompt or messages"),
        ({"messages": []}, "prompt or messages"),
        ({"prompt": None, "messages": None}, "prompt or messages"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": b"bytes"}, "prompt"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [42]}, "messages[0]"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": 5}]},
            "messages[1].content",
        ),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages[0].content"),
        ({"prompt": "x", "system": 3}, "system"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "max_tokens": -5}, "max_tokens"),
        ({"prompt": "x", "max_tokens": 10.0}, "max_tokens"),
        ({"prompt": "x", "max_tokens": "100"}, "max_tokens"),
        ({"prompt": "x", "max_tokens": True}, "max_tokens"),
        ({"prompt": "x", "temperature": -0.1}, "temperature"),
        ({"prompt": "x", "temperature": 2.01}, "temperature"),
        ({"prompt": "x", "temperature": float("nan")}, "temperature"),
        ({"prompt": "x", "temperature": "0.5"}, "temperature"),
        ({"prompt": "x", "temperature": True}, "temperature"),
        ({"prompt": "x", "stop": [1, 2]}, "stop"),
        ({"prompt": "x", "stop": 5}, "stop"),
        ({"prompt": "x", "metadata": []}, "metadata"),
        ({"prompt": "x", "timeout": 0}, "timeout"),
        ({"prompt": "x", "timeout": -1.0}, "timeout"),
        ({"prompt": "x", "timeout": "30"}, "timeout"),
    ],
)
def test_invalid_requests_raise_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        GenerationRequest(**kwargs)
    assert field in str(info.value)
    assert not info.value.retryable
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("temperature", [0, 0.0, 1, 0.7, 2, 2.0])
def test_temperature_bounds_are_inclusive(temperature: float) -> None:
    assert GenerationRequest(prompt="x", temperature=temperature).temperature == temperature


def test_max_tokens_of_one_is_allowed() -> None:
    assert GenerationRequest(prompt="x", max_tokens=1).max_tokens == 1


def test_usage_defaults_and_uncached_tokens() -> None:
    usage = TokenUsage(input_tokens=2734, output_tokens=10, total_tokens=2744,
                       cache_read_tokens=2304, cache_write_tokens=412)
    assert (usage.input_cost_usd, usage.output_cost_usd, usage.total_cost_usd) == (0.0, 0.0, 0.0)
    assert usage.uncached_input_tokens == 18
    assert usage.estimated is False


def test_seed_style_usage_with_costs() -> None:
    usage = TokenUsage(
        input_tokens=1000, output_tokens=500, total_tokens=1500,
        input_cost_usd=0.003, output_cost_usd=0.0075, total_cost_usd=0.0105,
    )
    assert usage.total_cost_usd == 0.0105


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_tokens": -1},
        {"output_tokens": 1.5},
        {"total_tokens": "3"},
        {"input_cost_usd": -0.01},
        {"total_cost_usd": float("inf")},
        {"input_cost_usd": "0.1"},
        {"cache_read_tokens": 8, "cache_write_tokens": 3},  # more cached than the prompt (10)
    ],
)
def test_impossible_usage_is_rejected(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    with pytest.raises(InvalidRequestError):
        TokenUsage(**{**base, **kwargs})


def test_response_chunk_and_health_shapes() -> None:
    usage = TokenUsage(1, 1, 2)
    response = GenerationResponse(text="hi", provider="p", model_id="m", usage=usage)
    assert (response.finish_reason, response.latency_ms, response.raw) == (None, 0.0, None)
    chunk = StreamChunk(text="h")
    assert (chunk.finish_reason, chunk.usage, chunk.provider, chunk.model_id) == (None, None, None, None)
    health = ProviderHealth(is_healthy=True)
    assert (health.latency_ms, health.last_error) == (None, None)


def test_n_is_at_most_openais_limit_and_tool_choice_needs_tools() -> None:
    with pytest.raises(InvalidRequestError, match="at most 128"):
        GenerationRequest(prompt="x", n=129)
    with pytest.raises(InvalidRequestError, match="only allowed when tools are given"):
        GenerationRequest(prompt="x", tool_choice="required")
