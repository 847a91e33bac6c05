"""wire.openai beyond text, requests: build_request per row of docs/fields.md, fit(), parse_request.

Requests of an Anthropic caller are built here directly as the neutral request plus an
``anthropic`` origin (what wire.anthropic.parse_request gives), so these tests pin the OpenAI
side of the table on their own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from greenlang_llm._errors import UnsupportedParamsError
from greenlang_llm._types import GenerationRequest
from greenlang_llm.content import WireOrigin
from greenlang_llm.wire import openai as wire
from greenlang_llm.wire._common import FITS, Fit, RequestFieldError

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"


def anthropic(
    body: dict[str, Any] | None = None, unknown: tuple[str, ...] = (), **fields: Any
) -> GenerationRequest:
    """A neutral request as an Anthropic caller's body parses to (``body`` is that caller's)."""
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return GenerationRequest(origin=WireOrigin("anthropic", body or {}, unknown), **fields)


def build(request: GenerationRequest, stream: bool = False) -> dict[str, Any]:
    return wire.build_request(request, "gpt-4.1-mini", stream=stream)


# ---------------------------------------------------------------- build_request, row by row


def test_text_blocks_and_system_become_text_parts_and_a_system_message() -> None:
    body = build(
        anthropic(
            system="Be brief.",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "user", "content": "Go on"},
            ],
            max_tokens=300,
        )
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Go on"},
    ]
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body


def test_images_become_image_url_parts_data_uri_or_url_with_detail() -> None:
    body = build(
        anthropic(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "media_type": "image/png", "data": PNG},
                        {"type": "image", "url": "https://example.com/cat.jpg", "detail": "low"},
                        {"type": "text", "text": "Compare."},
                    ],
                }
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        {"type": "text", "text": "Compare."},
    ]


def test_pdf_document_becomes_a_file_part_with_a_data_uri_and_a_filename() -> None:
    body = build(
        anthropic(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "document", "media_type": "application/pdf", "data": PDF, "title": "Report"},
                        {"type": "document", "media_type": "application/pdf", "data": PDF},
                    ],
                }
            ]
        )
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "Report.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
        },
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
        },
    ]


def conversation() -> list[dict[str, Any]]:
    """A two-call tool turn as an Anthropic caller sends it (neutral blocks)."""
    return [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "text": "Two cities.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_call",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "tool_call",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "arguments": '{"city":"Tokyo"}',
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_call_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_call_id": "toolu_2",
                    "content": [{"type": "text", "text": "down"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Summarise."},
            ],
        },
    ]


def test_tool_calls_and_results_become_assistant_tool_calls_and_tool_messages_in_order() -> None:
    body = build(anthropic(messages=conversation()))
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: down"},
        {"role": "user", "content": [{"type": "text", "text": "Summarise."}]},
    ]
    assert wire.fit(anthropic(messages=conversation())) == Fit(dropped=("thinking",))


def test_assistant_turn_of_only_tool_calls_has_null_content() -> None:
    body = build(
        GenerationRequest(
            messages=[
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": ""}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_call_id": "c1", "content": "ok"}]},
            ]
        )
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}


def test_sampling_stop_and_stream_are_translated() -> None:
    body = build(anthropic(temperature=0.3, top_p=0.9, stop=["END", "STOP"]), stream=True)
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.3, 0.9, ["END", "STOP"])
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert build(anthropic())["stream"] is False
    assert "stream_options" not in build(anthropic())


def test_tools_become_function_tools() -> None:
    body = build(
        anthropic(
            tools=[
                {"name": "get_weather", "description": "Weather now", "parameters": WEATHER, "strict": True},
                {"name": "noop", "parameters": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
            ]
        )
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather now",
                "parameters": WEATHER,
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_is_translated(choice: Any, expected: Any) -> None:
    tools = [{"name": "get_weather", "parameters": WEATHER}]
    assert build(anthropic(tools=tools, tool_choice=choice))["tool_choice"] == expected


def test_parallel_tool_calls_false_is_sent_with_the_tools_only() -> None:
    tools = [{"name": "get_weather", "parameters": WEATHER}]
    assert build(anthropic(tools=tools, parallel_tool_calls=False))["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in build(anthropic(parallel_tool_calls=False))


def test_response_format_json_schema_of_an_anthropic_caller_is_named_response_and_strict() -> None:
    body = build(anthropic(response_format={"type": "json_schema", "schema": WEATHER}))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": WEATHER, "strict": True},
    }


def test_response_format_of_a_library_request_keeps_its_name_description_and_strictness() -> None:
    fmt = {"type": "json_schema", "name": "weather", "description": "d", "schema": WEATHER}
    assert build(GenerationRequest(prompt="x", response_format=fmt))["response_format"] == {  # type: ignore[arg-type]
        "type": "json_schema",
        "json_schema": {"name": "weather", "description": "d", "schema": WEATHER},
    }
    obj = build(GenerationRequest(prompt="x", response_format={"type": "json_object"}))
    assert obj["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        ({"budget_tokens": 1024}, "low"),
        ({"budget_tokens": 1025}, "medium"),
        ({"budget_tokens": 2048}, "medium"),
        ({"budget_tokens": 2049}, "high"),
        ({"budget_tokens": 4096}, "high"),
        ({"budget_tokens": 32000}, "high"),
        ({"adaptive": True}, "medium"),
        ({"effort": "max"}, "xhigh"),
        ({"effort": "minimal"}, "minimal"),
        ({"effort": "high", "budget_tokens": 1024}, "high"),
    ],
)
def test_reasoning_becomes_reasoning_effort(reasoning: dict[str, Any], effort: str) -> None:
    assert build(anthropic(reasoning=reasoning))["reasoning_effort"] == effort


def test_user_is_sent_and_an_anthropic_callers_service_tier_is_dropped() -> None:
    request = anthropic({"service_tier": "auto"}, user="u-42", service_tier="auto")
    body = build(request)
    assert body["user"] == "u-42"
    assert "service_tier" not in body
    assert wire.fit(request) == Fit(dropped=("service_tier",))


def test_library_sampling_hints_are_all_sent() -> None:
    request = GenerationRequest(
        prompt="x",
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"50256": -100},
        logprobs=True,
        top_logprobs=3,
        n=2,
        user="u",
        service_tier="flex",
    )
    body = build(request)
    assert {
        k: body[k]
        for k in (
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "n",
            "user",
            "service_tier",
        )
    } == {
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 3,
        "n": 2,
        "user": "u",
        "service_tier": "flex",
    }
    assert wire.fit(request) is FITS


def test_extra_is_merged_last() -> None:
    body = build(GenerationRequest(prompt="x", top_p=0.5, extra={"top_p": 0.1, "store": True}))
    assert body["top_p"] == 0.1
    assert body["store"] is True


def test_library_openai_native_parts_and_custom_tools_are_forwarded() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}
    file_id = {"type": "file", "file": {"file_id": "file-abc"}}
    custom = {"type": "custom", "custom": {"name": "sql", "description": "SQL"}, "name": "sql"}
    request = GenerationRequest(
        messages=[{"role": "user", "content": [audio, file_id]}],
        tools=[custom],  # type: ignore[list-item]
        tool_choice={"name": "sql"},
    )
    assert wire.fit(request) is FITS
    body = build(request)
    assert body["messages"][0]["content"] == [audio, file_id]
    assert body["tools"] == [{"type": "custom", "custom": {"name": "sql", "description": "SQL"}}]
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "sql"}}


def test_text_only_requests_build_as_before_and_fit_at_once() -> None:
    request = GenerationRequest(prompt="Hi", system="S", temperature=0.2, stop=["a", "b", "c", "d", "e"])
    assert not request.rich
    assert wire.fit(request) is FITS
    assert build(request)["stop"] == ["a", "b", "c", "d", "e"]  # as today: the API judges


# ---------------------------------------------------------------- fit


@pytest.mark.parametrize(
    ("request_", "dropped", "refused"),
    [
        (anthropic(top_k=5), ("top_k",), ()),
        (
            anthropic(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
                    }
                ]
            ),
            ("cache_control",),
            (),
        ),
        (
            anthropic(
                {"system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]},
                system="S",
            ),
            ("cache_control",),
            (),
        ),
        (anthropic({"inference_geo": "us"}, ("inference_geo",)), ("inference_geo",), ()),
        (anthropic(reasoning={"adaptive": True, "display": "summarized"}), ("thinking.display",), ()),
        (
            anthropic(
                messages=[{"role": "user", "content": [{"type": "document", "url": "https://x/a.pdf"}]}]
            ),
            (),
            ("messages[0].content[0]: document",),
        ),
        (
            anthropic(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "document", "media_type": "text/plain", "text": "plain"}],
                    }
                ]
            ),
            (),
            ("messages[0].content[0]: document",),
        ),
        (
            anthropic(messages=[{"role": "user", "content": [{"type": "search_result", "source": "s"}]}]),
            (),
            ("messages[0].content[0]: search_result",),
        ),
        (
            anthropic(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_call_id": "t",
                                "content": [
                                    {"type": "text", "text": "see"},
                                    {"type": "image", "media_type": "image/png", "data": PNG},
                                ],
                            }
                        ],
                    }
                ]
            ),
            (),
            ("messages[0].content[0].content[1]: image",),
        ),
        (
            anthropic(
                tools=[
                    {"name": "get_weather", "parameters": WEATHER},
                    {"type": "web_search_20250305", "name": "web_search"},
                ]
            ),
            (),
            ("tools[1]: web_search_20250305",),
        ),
        (
            anthropic({}, ("container", "mcp_servers", "context_management")),
            (),
            ("container", "mcp_servers", "context_management"),
        ),
        (anthropic(stop=["1", "2", "3", "4", "5"]), (), ("stop_sequences",)),
        (GenerationRequest(prompt="x", stop=["1", "2", "3", "4", "5"], seed=1), (), ("stop",)),
        (GenerationRequest(prompt="x", top_k=3), ("top_k",), ()),
        (
            GenerationRequest(
                messages=[{"role": "user", "content": [{"type": "input_audio"}]}],
                origin=WireOrigin("anthropic", {}),
            ),
            (),
            ("messages[0].content[0]: input_audio",),
        ),
    ],
)
def test_fit_drops_hints_and_refuses_what_the_api_cannot_express(
    request_: GenerationRequest, dropped: tuple[str, ...], refused: tuple[str, ...]
) -> None:
    assert wire.fit(request_) == Fit(dropped, refused)
    if refused:
        with pytest.raises(UnsupportedParamsError) as info:
            build(request_)
        assert info.value.fields == refused
    else:
        build(request_)  # builds, leaving the dropped ones out


def test_dropped_fields_are_left_out_of_the_body() -> None:
    body = build(
        anthropic(
            {"inference_geo": "us"},
            ("inference_geo",),
            top_k=5,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
                }
            ],
        )
    )
    assert "top_k" not in body
    assert "inference_geo" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]


def test_drop_params_false_refuses_the_hints() -> None:
    request = anthropic(top_k=5, drop_params=False)
    assert wire.fit(request) == Fit((), ("top_k",))
    with pytest.raises(UnsupportedParamsError):
        build(request)


def test_same_api_requests_fit_as_they_are() -> None:
    request, _ = wire.parse_request(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1, "frobnicate": True}
    )
    assert request.origin is not None
    assert request.origin.unknown == ("frobnicate",)
    assert wire.fit(request) is FITS


# ---------------------------------------------------------------- same-API pass-through


def test_pass_through_keeps_every_field_and_rewrites_only_model_and_stream_flags() -> None:
    body = {
        "model": "gateway-alias",
        "messages": [{"role": "developer", "content": "S"}, {"role": "user", "content": "x", "name": "bob"}],
        "max_tokens": 50,
        "store": True,
        "metadata": {"k": "v"},
        "frobnicate": {"deep": [1, 2]},
        "stream": True,
        "stream_options": {"include_obfuscation": False},
    }
    request, options = wire.parse_request(body)
    assert options.extra == {"store": True, "metadata": {"k": "v"}, "frobnicate": {"deep": [1, 2]}}
    streamed = wire.build_request(request, "gpt-4.1-mini", stream=True)
    assert streamed == {
        **body,
        "model": "gpt-4.1-mini",
        "stream_options": {"include_obfuscation": False, "include_usage": True},
    }
    plain = wire.build_request(request, "gpt-4.1-mini", stream=False)
    expected = {**body, "model": "gpt-4.1-mini", "stream": False}
    del expected["stream_options"]
    assert plain == expected
    assert body["model"] == "gateway-alias"  # the caller's body is not changed


# ---------------------------------------------------------------- parse_request


def full_body() -> dict[str, Any]:
    return {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "What is here?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                    {
                        "type": "file",
                        "file": {"filename": "r.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
                    },
                    {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "4C"}]},
        ],
        "max_completion_tokens": 400,
        "temperature": 0.5,
        "top_p": 0.8,
        "stop": "END",
        "n": 1,
        "seed": 11,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"1": 5},
        "logprobs": True,
        "top_logprobs": 2,
        "user": "u-1",
        "service_tier": "auto",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": WEATHER,
                    "strict": True,
                },
            },
            {"type": "custom", "custom": {"name": "sql", "description": "SQL"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": WEATHER, "strict": True},
        },
        "reasoning_effort": "low",
        "modalities": ["text"],
        "store": False,
        "metadata": {"run": "7"},
        "prompt_cache_key": "k",
        "web_search_options": {},
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_parse_request_maps_the_whole_field_table() -> None:
    body = full_body()
    request, options = wire.parse_request(body)
    assert request.system == "Be brief."
    user, assistant, results = request.to_messages()
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is here?"},
            {"type": "image", "media_type": "image/png", "data": PNG, "detail": "high"},
            {"type": "image", "url": "https://example.com/a.jpg"},
            {"type": "document", "media_type": "application/pdf", "data": PDF, "title": "r.pdf"},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        ],
    }
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "tool_call", "id": "call_2", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_call_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_call_id": "call_2", "content": [{"type": "text", "text": "4C"}]},
        ],
    }
    assert request.max_tokens == 400
    assert (request.temperature, request.top_p, request.stop, request.n, request.seed) == (
        0.5,
        0.8,
        ["END"],
        1,
        11,
    )
    assert (request.presence_penalty, request.frequency_penalty, request.logit_bias) == (0.1, 0.2, {"1": 5})
    assert (request.logprobs, request.top_logprobs, request.user, request.service_tier) == (
        True,
        2,
        "u-1",
        "auto",
    )
    assert request.tools == [
        {"name": "get_weather", "description": "Weather", "parameters": WEATHER, "strict": True},
        {"type": "custom", "custom": {"name": "sql", "description": "SQL"}, "name": "sql"},
    ]
    assert request.tool_choice == {"name": "get_weather"}
    assert request.parallel_tool_calls is False
    assert request.response_format == {"type": "json_schema", "name": "w", "schema": WEATHER, "strict": True}
    assert request.reasoning == {"effort": "low"}
    assert request.origin == WireOrigin(
        "openai", body, ("store", "metadata", "prompt_cache_key", "web_search_options")
    )
    assert options.extra == {
        "store": False,
        "metadata": {"run": "7"},
        "prompt_cache_key": "k",
        "web_search_options": {},
    }
    assert options.stream
    assert options.include_usage


@pytest.mark.parametrize(
    ("fields", "unknown"),
    [
        ({"functions": [{"name": "f"}], "function_call": "auto"}, ("functions", "function_call")),
        (
            {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}},
            ("tool_choice",),
        ),
        (
            {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
            ("modalities", "audio"),
        ),
        ({"modalities": ["text"]}, ()),
        ({"response_format": {"type": "text"}, "verbosity": None}, ()),
        (
            {"safety_identifier": "s", "prediction": {"type": "content", "content": "x"}},
            ("safety_identifier", "prediction"),
        ),
    ],
)
def test_fields_no_neutral_field_covers_are_kept_in_the_origin(
    fields: dict[str, Any], unknown: tuple[str, ...]
) -> None:
    request, options = wire.parse_request(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    )
    assert request.origin is not None
    assert request.origin.unknown == unknown
    assert tuple(options.extra) == unknown


def test_named_tool_choices_and_json_object_are_parsed() -> None:
    base = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "custom", "custom": {"name": "sql"}}],
    }
    request, _ = wire.parse_request(
        {
            **base,
            "tool_choice": {"type": "custom", "custom": {"name": "sql"}},
            "response_format": {"type": "json_object"},
        }
    )
    assert request.tool_choice == {"name": "sql"}
    assert request.response_format == {"type": "json_object"}
    request, _ = wire.parse_request({**base, "tool_choice": "required"})
    assert request.tool_choice == "required"


def test_a_plain_text_body_is_kept_as_a_plain_origin_and_stays_on_the_text_path() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 9,
    }
    request, options = wire.parse_request(body)
    assert request.origin is not None
    assert request.origin.body is body
    assert request.origin.plain
    assert not request.rich
    assert options.extra == {}
    # sent as it came: the deprecated max_tokens stays (a server may know no other)
    assert wire.build_request(request, "gpt-4.1-mini", stream=True) == {**body, "model": "gpt-4.1-mini"}


def test_a_function_tool_without_parameters_takes_an_empty_object() -> None:
    request, _ = wire.parse_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "now"}}],
        }
    )
    assert request.tools == [{"name": "now", "parameters": {"type": "object", "properties": {}}}]


def ok_body(**change: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "x"}], **change}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 1.5}, "n"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": "7"}, "seed"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": True}, "frequency_penalty"),
        ({"logit_bias": {"1": 500}}, "logit_bias"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"user": 5}, "user"),
        ({"parallel_tool_calls": 1}, "parallel_tool_calls"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"tools": {"name": "f"}}, "tools"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}] * 2}, "tools"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "missing"}}}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "response_format"),
        ({"modalities": "text"}, "modalities"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages"),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": None}]},
            "messages",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": None, "tool_calls": [{"type": "function"}]},
                ]
            },
            "messages",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}
                        ],
                    },
                ]
            },
            "messages",
        ),
        ({"messages": [{"role": "tool", "tool_call_id": "c", "content": 5}]}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages"),
        (
            {
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
                    {"role": "user", "content": "x"},
                ]
            },
            "messages",
        ),
    ],
)
def test_parse_request_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(wire.RequestFieldError) as info:
        wire.parse_request(ok_body(**change))
    assert info.value.param == field


def test_tools_with_n_and_the_rest_are_not_refused_when_parsing() -> None:
    request, _ = wire.parse_request(ok_body(n=3, tools=[{"type": "function", "function": {"name": "f"}}]))
    assert request.n == 3


def test_openai_to_neutral_to_openai_keeps_the_neutral_fields() -> None:
    body = full_body()
    body["messages"][4]["content"] = "4C"  # a tool message's text parts are sent back as its text
    request, _ = wire.parse_request(body)
    translated = wire.build_request(dataclasses.replace(request, origin=None), "gpt-4.1-mini", stream=True)
    again, _ = wire.parse_request(translated)
    for name in (
        "system",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "service_tier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning",
    ):
        assert getattr(again, name) == getattr(request, name), name
    assert translated["messages"][2:] == body["messages"][2:]  # the tool turn as it came


def test_anthropic_hints_in_the_unknown_fields_are_dropped_not_refused() -> None:
    request = anthropic(
        {"service_tier": "auto", "cache_control": {"type": "ephemeral"}, "container": "c"},
        ("service_tier", "cache_control", "container"),
    )
    assert wire.fit(request) == Fit(("service_tier", "cache_control"), ("container",))


def test_an_anthropic_callers_body_parsed_by_its_wire_module_is_served_by_openai() -> None:
    from greenlang_llm.wire import anthropic as wire_anthropic

    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5000,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need the tool.", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "And?"},
                ],
            },
        ],
        "tools": [{"name": "get_weather", "description": "W", "input_schema": WEATHER}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "u-9"},
        "service_tier": "auto",
        "inference_geo": "us",
        "top_k": 5,
        "stop_sequences": ["END"],
    }
    request, _ = wire_anthropic.parse_request(body)
    assert set(wire.fit(request).dropped) == {
        "top_k",
        "thinking",
        "cache_control",
        "service_tier",
        "inference_geo",
    }
    assert wire.fit(request).refused == ()
    sent = build(request, stream=True)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": [{"type": "text", "text": "And?"}]},
    ]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "W", "parameters": WEATHER}}
    ]
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("required", False)
    assert (sent["reasoning_effort"], sent["user"], sent["stop"]) == ("medium", "u-9", ["END"])
    assert sent["max_completion_tokens"] == 5000
    for absent in ("top_k", "service_tier", "inference_geo", "metadata", "thinking", "system"):
        assert absent not in sent




def test_a_same_api_body_without_an_output_limit_gets_the_one_its_budget_reserved() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Write a very long essay"}]}
    request, _ = wire.parse_request(body)
    sent = wire.build_request(request, "gpt-4.1-mini", stream=False)
    assert sent["max_completion_tokens"] == request.max_tokens == 1024
    assert "max_completion_tokens" not in body  # the caller's body itself is untouched
    capped = {**body, "max_tokens": 50}
    request, _ = wire.parse_request(capped)
    sent = wire.build_request(request, "gpt-4.1-mini", stream=False)
    assert sent["max_tokens"] == 50
    assert "max_completion_tokens" not in sent


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": [{"role": [], "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": []},
          "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice"),
    ],
)
def test_a_wrong_type_is_a_400_naming_the_field_not_a_crash(body: dict[str, Any], says: str) -> None:
    with pytest.raises(RequestFieldError) as caught:
        wire.parse_request({"model": "m", **body})
    assert str(caught.value).startswith(says)
