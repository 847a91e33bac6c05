"""greenlang_llm.wire.anthropic, requests beyond text: build_request row by row of
docs/fields.md, fit (dropped / refused), the same-API pass-through, and parse_request of the
whole Messages API request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from greenlang_llm._errors import InvalidRequestError, UnsupportedParamsError
from greenlang_llm._types import GenerationRequest
from greenlang_llm.content import WireOrigin
from greenlang_llm.wire import anthropic as wire
from greenlang_llm.wire import openai as wire_openai
from greenlang_llm.wire._common import FITS, Fit, RequestFieldError

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
TOOL = {
    "name": "get_weather",
    "description": "Weather now",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def build(**fields: Any) -> dict[str, Any]:
    fields.setdefault("prompt", "Hi")
    return wire.build_request(GenerationRequest(**fields), "claude-sonnet-4-6", stream=False)


def openai_origin(unknown: tuple[str, ...] = (), **body: Any) -> WireOrigin:
    return WireOrigin("openai", {"model": "gpt-5", "messages": [], **body}, unknown)


# ---------------------------------------------------------------- build_request, row by row


def test_plain_text_request_builds_exactly_what_it_built_before() -> None:
    body = build(prompt=None, messages=[{"role": "user", "content": "Hi"}], temperature=0.3, stop=["END"])
    assert body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "stop_sequences": ["END"],
        "stream": False,
    }


def test_system_messages_fold_into_system_and_keep_cache_control_as_blocks() -> None:
    cache = {"type": "ephemeral"}
    body = build(
        system="Be terse.",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": cache}]},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        prompt=None,
    )
    assert body["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "Long rules", "cache_control": cache},
    ]
    plain = build(
        system="Be terse.",
        messages=[
            {"role": "system", "content": "More"},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        prompt=None,
    )
    assert plain["system"] == "Be terse.\n\nMore"


def test_images_become_base64_or_url_sources() -> None:
    body = build(
        prompt=None,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {
                        "type": "image",
                        "url": "https://example.com/cat.jpg",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            }
        ],
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
            "cache_control": {"type": "ephemeral"},
        },
    ]


def test_documents_become_base64_url_or_text_sources_with_their_title() -> None:
    text_b64 = "aGVsbG8gd29ybGQ="  # "hello world"
    body = build(
        prompt=None,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "media_type": "application/pdf",
                        "data": "JVBERi0=",
                        "title": "a.pdf",
                    },
                    {"type": "document", "url": "https://example.com/b.pdf"},
                    {"type": "document", "text": "plain words"},
                    {"type": "document", "media_type": "text/plain", "data": text_b64},
                    {"type": "text", "text": "Summarise"},
                ],
            }
        ],
    )
    assert body["messages"][0]["content"][:4] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/b.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello world"}},
    ]
    odd = GenerationRequest(
        messages=[
            {
                "role": "user",
                "content": [{"type": "document", "media_type": "application/zip", "data": "UEsDBA=="}],
            }
        ]
    )
    assert wire.fit(odd).refused == ("messages[0].content[0]: document application/zip",)


def test_tool_conversation_translates_calls_results_and_merges_user_turns() -> None:
    request = GenerationRequest(
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "no such city"}]},
            {"role": "user", "content": "And tomorrow?"},
        ],
    )
    body = wire.build_request(request, "claude-sonnet-4-6", stream=True)
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [  # the tool results and the next question: one user turn
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "no such city"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather now", "input_schema": TOOL["parameters"]}
    ]
    assert "tool_choice" not in body
    assert body["stream"] is True


def test_arguments_that_are_not_a_json_object_are_sent_as_an_empty_input() -> None:
    for arguments in ("", "not json", "[1, 2]", '"text"'):
        body = build(
            prompt=None,
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_call", "id": "t", "name": "f", "arguments": arguments}],
                },
            ],
        )
        assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]


def test_tool_result_errors_images_and_cache_control_are_kept() -> None:
    cache = {"type": "ephemeral"}
    body = build(
        prompt=None,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": "t1",
                        "is_error": True,
                        "cache_control": cache,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {"type": "image", "media_type": "image/png", "data": "AA=="},
                        ],
                    },
                ],
            }
        ],
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "content": [
                {"type": "text", "text": "boom"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
            ],
            "is_error": True,
            "cache_control": cache,
        }
    ]


def test_thinking_blocks_are_forwarded_with_their_signature_unsigned_ones_dropped() -> None:
    request = GenerationRequest(
        messages=[
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "text": "easy", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "thinking", "text": "no signature"},
                    {"type": "text", "text": "4"},
                ],
            },
            {"role": "user", "content": "and 3+3?"},
        ]
    )
    body = wire.build_request(request, "m", stream=False)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "easy", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "4"},
    ]
    assert wire.fit(request) == Fit(dropped=("thinking",))


def test_tools_keep_strict_and_cache_control_and_server_tools_go_verbatim() -> None:
    cache = {"type": "ephemeral"}
    body = build(tools=[{**TOOL, "strict": True, "cache_control": cache}, WEB_SEARCH])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather now",
            "input_schema": TOOL["parameters"],
            "strict": True,
            "cache_control": cache,
        },
        WEB_SEARCH,
    ]
    assert wire.fit(GenerationRequest(prompt="Hi", tools=[TOOL, WEB_SEARCH])) == FITS


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"name": "get_weather"}, None, {"type": "tool", "name": "get_weather"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"name": "get_weather"},
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, None, None),
        (None, True, None),
    ],
)
def test_tool_choice_and_parallel_tool_calls(choice: Any, parallel: bool | None, expected: Any) -> None:
    body = build(tools=[TOOL], tool_choice=choice, parallel_tool_calls=parallel)
    assert body.get("tool_choice") == expected


def test_json_schema_response_format_becomes_output_config() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = build(response_format={"type": "json_schema", "name": "city", "schema": schema, "strict": True})
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in body


def test_json_object_response_format_becomes_a_forced_tool() -> None:
    request = GenerationRequest(prompt="A JSON object please", response_format={"type": "json_object"})
    body = wire.build_request(request, "m", stream=False)
    assert body["tools"] == [
        {
            "name": "json_object",
            "description": "Answer with a JSON object.",
            "input_schema": {"type": "object"},
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_object"}
    assert wire.fit(request) == FITS
    with_tools = GenerationRequest(prompt="x", response_format={"type": "json_object"}, tools=[TOOL])
    assert wire.fit(with_tools).refused == ("response_format",)


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking"),
    [
        ({"budget_tokens": 2000}, 4000, {"type": "enabled", "budget_tokens": 2000}),
        ({"budget_tokens": 10}, 4000, {"type": "enabled", "budget_tokens": 1024}),
        ({"budget_tokens": 9000}, 4000, {"type": "enabled", "budget_tokens": 3999}),
        ({"effort": "minimal"}, 16000, {"type": "enabled", "budget_tokens": 1024}),
        ({"effort": "low"}, 16000, {"type": "enabled", "budget_tokens": 1024}),
        ({"effort": "medium"}, 16000, {"type": "enabled", "budget_tokens": 2048}),
        ({"effort": "high"}, 16000, {"type": "enabled", "budget_tokens": 4096}),
        ({"effort": "xhigh"}, 16000, {"type": "enabled", "budget_tokens": 8192}),
        ({"effort": "max"}, 16000, {"type": "enabled", "budget_tokens": 8192}),
        ({"effort": "high"}, 3000, {"type": "enabled", "budget_tokens": 2999}),
        (
            {"effort": "high", "display": "omitted"},
            16000,
            {"type": "enabled", "budget_tokens": 4096, "display": "omitted"},
        ),
        ({"adaptive": True}, 16000, {"type": "adaptive"}),
        ({"effort": "none"}, 16000, None),
        ({"budget_tokens": 0}, 16000, None),
    ],
)
def test_reasoning_becomes_a_thinking_budget(reasoning: Any, max_tokens: int, thinking: Any) -> None:
    request = GenerationRequest(prompt="Think", reasoning=reasoning, max_tokens=max_tokens)
    assert wire.build_request(request, "m", stream=False).get("thinking") == thinking
    assert wire.fit(request) == Fit()


def test_adaptive_thinking_sends_its_effort_in_output_config() -> None:
    body = build(reasoning={"adaptive": True, "effort": "minimal"})
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "low"}


def test_a_budget_that_does_not_fit_below_max_tokens_is_dropped() -> None:
    request = GenerationRequest(prompt="Think", reasoning={"effort": "high"}, max_tokens=1000)
    assert "thinking" not in wire.build_request(request, "m", stream=False)
    assert wire.fit(request) == Fit(dropped=("reasoning",))
    strict = GenerationRequest(
        prompt="Think", reasoning={"effort": "high"}, max_tokens=1000, drop_params=False
    )
    assert wire.fit(strict) == Fit(refused=("reasoning",))
    with pytest.raises(UnsupportedParamsError) as info:
        wire.build_request(strict, "m", stream=False)
    assert info.value.fields == ("reasoning",)


def test_thinking_is_not_sent_with_a_forced_tool() -> None:
    request = GenerationRequest(
        prompt="x", reasoning={"effort": "low"}, tools=[TOOL], tool_choice="required", max_tokens=4000
    )
    body = wire.build_request(request, "m", stream=False)
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "any"}
    assert wire.fit(request).dropped == ("reasoning",)


def test_thinking_drops_the_sampling_fields_the_api_rejects_with_it() -> None:
    request = GenerationRequest(
        prompt="x", reasoning={"budget_tokens": 2048}, max_tokens=4096, temperature=0.2, top_p=0.5, top_k=40
    )
    body = wire.build_request(request, "m", stream=False)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert not {"temperature", "top_p", "top_k"} & body.keys()
    assert wire.fit(request).dropped == ("temperature", "top_k", "top_p")
    fine = GenerationRequest(
        prompt="x", reasoning={"budget_tokens": 2048}, max_tokens=4096, temperature=1, top_p=0.97
    )
    assert wire.fit(fine) == Fit()
    assert (
        build(reasoning={"budget_tokens": 2048}, max_tokens=4096, temperature=1, top_p=0.97)["top_p"] == 0.97
    )


def test_sampling_user_and_stop_fields() -> None:
    body = build(top_p=0.9, top_k=40, stop=["###"], user="user-7", temperature=0.5)
    assert body["top_p"] == 0.9
    assert body["top_k"] == 40
    assert body["stop_sequences"] == ["###"]
    assert body["metadata"] == {"user_id": "user-7"}
    assert body["temperature"] == 0.5


def test_hints_are_dropped_and_named() -> None:
    request = GenerationRequest(
        prompt="x",
        seed=1,
        presence_penalty=0.5,
        frequency_penalty=0.1,
        logit_bias={"50256": -100},
        service_tier="flex",
        n=1,
    )
    body = wire.build_request(request, "m", stream=False)
    assert (
        not {"seed", "presence_penalty", "frequency_penalty", "logit_bias", "service_tier", "n"} & body.keys()
    )
    assert wire.fit(request) == Fit(
        dropped=("seed", "presence_penalty", "frequency_penalty", "logit_bias", "service_tier")
    )
    strict = GenerationRequest(prompt="x", seed=1, drop_params=False)
    assert wire.fit(strict) == Fit(refused=("seed",))


def test_logprobs_and_several_answers_are_refused() -> None:
    request = GenerationRequest(prompt="x", logprobs=True, top_logprobs=3, n=2)
    assert wire.fit(request).refused == ("logprobs", "top_logprobs", "n")
    with pytest.raises(UnsupportedParamsError) as info:
        wire.build_request(request, "m", stream=False)
    assert info.value.fields == ("logprobs", "top_logprobs", "n")
    assert wire.fit(GenerationRequest(prompt="x", logprobs=False, top_logprobs=0)) == Fit()


def test_image_detail_is_dropped_unless_auto() -> None:
    def request(detail: str) -> GenerationRequest:
        return GenerationRequest(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "url": "https://example.com/a.png", "detail": detail}],
                }
            ]
        )

    assert wire.fit(request("low")) == Fit(dropped=("detail",))
    assert wire.fit(request("auto")) == Fit()
    assert "detail" not in wire.build_request(request("low"), "m", stream=False)["messages"][0]["content"][0]


def test_extra_is_merged_last() -> None:
    body = build(top_k=5, extra={"top_k": 7, "service_tier": "standard_only"})
    assert body["top_k"] == 7
    assert body["service_tier"] == "standard_only"


def test_openai_block_kinds_and_tool_types_are_refused_for_a_library_request() -> None:
    request = GenerationRequest(
        tools=[TOOL, {"type": "custom", "name": "grammar", "custom": {"name": "grammar"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "listen"},
                    {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
                    {"type": "search_result", "source": "https://a", "title": "t", "content": []},
                ],
            }
        ],
    )
    assert wire.fit(request) == Fit(refused=("tools[1]: custom", "messages[0].content[1]: input_audio"))


# ---------------------------------------------------------------- fit for an OpenAI caller


def test_fit_names_an_openai_callers_fields() -> None:
    origin = openai_origin(
        ("store", "modalities", "x_custom"),
        messages=[{"role": "user", "content": "hi", "name": "bob"}],
        store=True,
        modalities=["text", "audio"],
        x_custom=1,
    )
    request = GenerationRequest(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "input_audio", "input_audio": {"data": "AA=="}},
                ],
            }
        ],
        tools=[TOOL, {"type": "custom", "name": "grammar", "custom": {"name": "grammar"}}],
        seed=4,
        logprobs=True,
        n=3,
        reasoning={"effort": "high"},
        max_tokens=500,
        origin=origin,
    )
    verdict = wire.fit(request)
    assert verdict.dropped == ("seed", "store", "messages.name", "reasoning_effort")
    assert verdict.refused == (
        "logprobs",
        "n",
        "tools[1]: custom",
        "messages[0].content[1]: input_audio",
        "modalities",
        "x_custom",
    )
    strict = GenerationRequest(
        prompt="hi", seed=4, origin=openai_origin(("store",), store=True), drop_params=False
    )
    assert wire.fit(strict) == Fit(refused=("seed", "store"))


def test_an_openai_body_is_translated_through_the_neutral_request() -> None:
    body = {
        "model": "gpt-5",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "https://e.com/sky.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "-3C"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": TOOL["parameters"]}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_completion_tokens": 300,
        "stop": ["END"],
        "user": "u1",
        "seed": 7,
    }
    request, _ = wire_openai.parse_request(body)
    out = wire.build_request(request, "claude-sonnet-4-6", stream=False)
    assert out["system"] == "Be brief."
    assert out["max_tokens"] == 300
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image", "source": {"type": "url", "url": "https://e.com/sky.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"location": "Oslo"}}
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "-3C"}]},
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u1"}
    assert "seed" not in out
    assert wire.fit(request).dropped == ("seed",)


# ---------------------------------------------------------------- same-API pass-through


def full_body() -> dict[str, Any]:
    return {
        "model": "claude-opus-4-6",
        "max_tokens": 16000,
        "system": [
            {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris? See the chart."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://e.com/r.pdf"},
                        "title": "Report",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Call the tool.", "signature": "c2ln"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": False},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather now",
                "input_schema": TOOL["parameters"],
                "cache_control": {"type": "ephemeral"},
            },
            WEB_SEARCH,
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 4000, "display": "summarized"},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user-42"},
        "top_k": 20,
        "stop_sequences": ["###"],
        "stream": False,
        "service_tier": "auto",
        "inference_geo": "eu",
        "container": "container_abc",
        "context_management": {"edits": []},
        "speed": "fast",
    }


def test_same_api_request_is_sent_as_it_came_with_model_and_stream_rewritten() -> None:
    body = full_body()
    request, options = wire.parse_request(body)
    assert wire.fit(request) is FITS
    sent = wire.build_request(request, "claude-opus-4-6-20260101", stream=True)
    assert sent == {**body, "model": "claude-opus-4-6-20260101", "stream": True}
    assert sent is not body
    assert body["model"] == "claude-opus-4-6"  # the caller's body is not touched
    assert options.extra == {
        k: body[k] for k in ("service_tier", "inference_geo", "container", "context_management", "speed")
    }


# ---------------------------------------------------------------- parse_request


def test_parse_request_reads_every_field_into_the_neutral_request() -> None:
    request, options = wire.parse_request(full_body())
    assert options.model == "claude-opus-4-6"
    assert options.stream is False
    assert request.system == "You are a weather bot."
    assert request.tools == [
        {
            "name": "get_weather",
            "description": "Weather now",
            "parameters": TOOL["parameters"],
            "cache_control": {"type": "ephemeral"},
        },
        WEB_SEARCH,
    ]
    assert request.tool_choice == "auto"
    assert request.parallel_tool_calls is False
    assert request.reasoning == {"budget_tokens": 4000, "display": "summarized", "effort": "high"}
    assert request.user == "user-42"
    assert request.top_k == 20
    assert request.stop == ["###"]
    assert request.max_tokens == 16000
    assert request.origin is not None
    assert request.origin.api == "anthropic"
    assert request.origin.unknown == (
        "service_tier",
        "inference_geo",
        "container",
        "context_management",
        "speed",
    )
    assert request.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris? See the chart."},
                {"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="},
                {"type": "document", "url": "https://e.com/r.pdf", "title": "Report"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "text": "Call the tool.", "signature": "c2ln"},
                {
                    "type": "tool_call",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_call_id": "toolu_1", "content": "18C"}]},
    ]


def test_hint_and_meaning_fields_are_the_tables() -> None:
    assert {"service_tier", "inference_geo"} <= wire.HINT_FIELDS
    assert {"container", "mcp_servers", "context_management"} == wire.MEANING_FIELDS
    assert not wire.HINT_FIELDS & wire.MEANING_FIELDS


@pytest.mark.parametrize(
    ("choice", "neutral", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {"name": "get_weather"},
            False,
        ),
        ({"type": "any", "disable_parallel_tool_use": False}, "required", None),
    ],
)
def test_parse_tool_choice(choice: dict[str, Any], neutral: Any, parallel: bool | None) -> None:
    body = {**full_body(), "tool_choice": choice}
    request, _ = wire.parse_request(body)
    assert request.tool_choice == neutral
    assert request.parallel_tool_calls is parallel


def test_parse_thinking_modes_and_structured_output() -> None:
    base = {"model": "m", "max_tokens": 5000, "messages": [{"role": "user", "content": "hi"}]}
    adaptive, _ = wire.parse_request({**base, "thinking": {"type": "adaptive", "display": "omitted"}})
    assert adaptive.reasoning == {"adaptive": True, "display": "omitted"}
    disabled, _ = wire.parse_request({**base, "thinking": {"type": "disabled"}})
    assert disabled.reasoning is None
    other, options = wire.parse_request({**base, "thinking": {"type": "between_tools"}})
    assert other.reasoning is None
    assert other.origin is not None
    assert other.origin.unknown == ("thinking",)  # another API cannot be told: refused there
    assert options.extra == {"thinking": {"type": "between_tools"}}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    structured, _ = wire.parse_request(
        {**base, "output_config": {"format": {"type": "json_schema", "schema": schema}}}
    )
    assert structured.response_format == {"type": "json_schema", "name": "response", "schema": schema}
    assert structured.reasoning is None


def test_parse_keeps_tools_it_cannot_express_neutrally_verbatim() -> None:
    base = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    examples = {"name": "f", "input_schema": {"type": "object"}, "input_examples": [{"a": 1}]}
    mcp = {"type": "mcp_toolset", "mcp_server_name": "github"}
    request, _ = wire.parse_request({**base, "tools": [examples, mcp]})
    assert request.tools == [{"type": "custom", **examples}, {**mcp, "name": "github"}]


def test_parse_keeps_blocks_with_sources_the_neutral_model_lacks_as_api_own_blocks() -> None:
    file_image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    content_doc = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": "x"}]},
    }
    body = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    file_image,
                    {"type": "tool_result", "tool_use_id": "t", "content": [content_doc]},
                ],
            }
        ],
    }
    request, _ = wire.parse_request(body)
    assert request.messages is not None
    content = request.messages[0]["content"]
    assert content[1] == {**file_image, "type": "image_file"}
    assert content[2]["content"] == [{**content_doc, "type": "document_content"}]
    assert wire.build_request(request, "m2", stream=False) == {**body, "model": "m2", "stream": False}


def test_parse_count_tokens_request_takes_tools_and_thinking() -> None:
    body = {
        **orjson.loads((FIXTURES / "count_tokens_request.json").read_bytes()),
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    request, model = wire.parse_count_tokens_request(body)
    assert model == "claude-sonnet-4-6"
    assert request.tools == [{"name": "f", "parameters": {"type": "object"}}]
    assert request.reasoning == {"budget_tokens": 2048}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tools": {"name": "f"}}, "tools"),
        ({"tools": [{"name": "f"}]}, "tools"),
        ({"tools": [{"input_schema": {}}]}, "tools"),
        ({"tools": [{"name": "f", "input_schema": {}}, {"name": "f", "input_schema": {}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
        ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}}, "tool_choice"),
        ({"tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "thinking"),
        ({"thinking": {"type": "enabled"}}, "thinking"),
        ({"thinking": {"type": "adaptive", "display": "full"}}, "thinking"),
        ({"thinking": "on"}, "thinking"),
        ({"output_config": {"format": {"type": "json_object"}}}, "output_config"),
        ({"output_config": {"effort": "extreme"}}, "output_config"),
        ({"metadata": {"user_id": 3}}, "metadata"),
        ({"metadata": "u"}, "metadata"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": "0.5"}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}]}, "messages"),
    ],
)
def test_parse_request_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    body = {
        "model": "m",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        **change,
    }
    with pytest.raises(InvalidRequestError) as info:
        wire.parse_request(body)
    assert str(info.value).startswith(field)
    assert getattr(info.value, "param", None) == field


def test_an_uploaded_openai_file_is_refused_an_inline_one_translated() -> None:
    request = GenerationRequest(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_id": "file-abc"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "r.pdf"},
                    },
                ],
            }
        ],
        origin=openai_origin(),
    )
    assert wire.fit(request) == Fit(refused=("messages[0].content[0]: file",))
    inline = GenerationRequest(messages=[{"role": "user", "content": request.messages[0]["content"][1:]}])  # type: ignore[index]
    assert wire.build_request(inline, "m", stream=False)["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "r.pdf",
        }
    ]


def test_a_text_only_body_is_plain_yet_sent_as_it_came() -> None:
    body = orjson.loads((FIXTURES / "request_example.json").read_bytes())
    request, _ = wire.parse_request(body)
    assert request.origin is not None
    assert request.origin.plain
    assert not request.rich
    assert wire.build_request(request, "claude-x", stream=False) == {
        **body,
        "model": "claude-x",
        "stream": False,
    }
    cached = {**body, "system": [{"type": "text", "text": "Rules", "cache_control": {"type": "ephemeral"}}]}
    request, _ = wire.parse_request(cached)
    assert request.origin is not None
    assert not request.origin.plain  # another API would drop the cache_control
    assert request.rich
    unknown, _ = wire.parse_request({**body, "speed": "fast"})
    assert unknown.rich


def test_a_system_of_the_wrong_type_is_a_400_naming_it() -> None:
    with pytest.raises(RequestFieldError, match=r"^system: must be a string"):
        wire.parse_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                            "system": 5})
