"""The simulator's replies beyond text, exact: tool calls, echoed tool results, structured
output, thinking, OpenAI ``n`` and ``logprobs``, input tokens of images, documents and tools,
and the stream frames (the rules in ``simulator/replies.py``'s docstring)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from greenlang_llm._types import GenerationRequest
from greenlang_llm.content import Delta
from greenlang_llm.simulator.config import ModelBehaviour
from greenlang_llm.simulator.replies import (
    VOCAB,
    count_input_tokens,
    count_text_tokens,
    make_reply,
    stream_deltas,
)

B = ModelBehaviour()
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 3},
        },
        "required": ["city", "unit", "days"],
    },
}
TIME: dict[str, Any] = {
    "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}


def digest(messages: list[dict[str, Any]], model: str = "m", system: str | None = None, *extra: int) -> bytes:
    key = orjson.dumps([model, system, messages, *extra], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(key, digest_size=32).digest()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def words(d: bytes, n: int) -> list[str]:
    return [VOCAB[(d[i % 32] + 7 * (i // 32)) % 64] for i in range(n)]


def weather_arguments(d: bytes) -> str:
    # city: the word of byte 0; unit: enum[0]; days: byte 1 % 10 + minimum 1, at most 3
    days = min(d[1] % 10 + 1, 3)
    return orjson.dumps({"city": VOCAB[d[0] % 64], "unit": "celsius", "days": days}).decode()


# ---------------------------------------------------------------- tool calls


def test_a_request_with_tools_gets_a_call_of_the_first_tool_when_none_is_named() -> None:
    messages = user("What should I wear?")
    reply = make_reply(GenerationRequest(messages=messages, tools=[WEATHER, TIME]), "m", B)
    d = digest(messages)
    arguments = weather_arguments(d)
    assert reply.content == [
        {"type": "tool_call", "id": f"toolu_sim{d.hex()[:16]}0", "name": "get_weather",
         "arguments": arguments}
    ]
    assert reply.finish_reason == "tool_calls"
    assert reply.pieces == []
    assert reply.text == ""
    assert reply.usage.output_tokens == count_text_tokens(arguments) + 1  # "get_weather" is one run


def test_openai_tool_call_ids_start_with_call_sim() -> None:
    messages = user("hi")
    reply = make_reply(GenerationRequest(messages=messages, tools=[WEATHER]), "m", B, "openai")
    assert reply.content is not None
    assert reply.content[0]["id"] == f"call_sim{digest(messages).hex()[:16]}0"


def test_tools_named_in_the_last_user_turn_are_all_called_in_tools_order() -> None:
    messages = user("call get_time, then get_weather.")
    reply = make_reply(GenerationRequest(messages=messages, tools=[WEATHER, TIME]), "m", B)
    d = digest(messages)
    assert reply.content is not None
    assert [(b["id"], b["name"]) for b in reply.content] == [
        (f"toolu_sim{d.hex()[:16]}0", "get_weather"), (f"toolu_sim{d.hex()[:16]}1", "get_time")]
    assert reply.content[1]["arguments"] == orjson.dumps({"tz": VOCAB[d[0] % 64]}).decode()
    assert reply.usage.output_tokens == (
        count_text_tokens(weather_arguments(d)) + 1 + count_text_tokens(reply.content[1]["arguments"]) + 1)


def test_a_name_inside_a_longer_word_does_not_count() -> None:
    messages = user("get_time_zone and get-weather are not tools here")
    reply = make_reply(GenerationRequest(messages=messages, tools=[TIME, WEATHER]), "m", B)
    assert reply.content is not None
    assert [b["name"] for b in reply.content] == ["get_time"]  # none named: the first tool


def test_parallel_tool_calls_false_calls_only_the_first_named_tool() -> None:
    messages = user("get_time and get_weather")
    request = GenerationRequest(messages=messages, tools=[TIME, WEATHER], parallel_tool_calls=False)
    reply = make_reply(request, "m", B)
    assert reply.content is not None
    assert [b["name"] for b in reply.content] == ["get_time"]


def test_a_named_tool_choice_calls_that_tool() -> None:
    messages = user("get_time please")
    request = GenerationRequest(messages=messages, tools=[TIME, WEATHER], tool_choice={"name": "get_weather"})
    reply = make_reply(request, "m", B)
    assert reply.content is not None
    assert [b["name"] for b in reply.content] == ["get_weather"]


def test_required_calls_a_tool_and_none_answers_with_text() -> None:
    messages = user("hello")
    required = make_reply(GenerationRequest(messages=messages, tools=[TIME], tool_choice="required"), "m", B)
    assert required.finish_reason == "tool_calls"
    none = make_reply(GenerationRequest(messages=messages, tools=[TIME], tool_choice="none"), "m", B)
    assert none.content is None
    assert none.text == " ".join(words(digest(messages), 16))
    assert none.finish_reason == "stop"


def test_api_native_tools_alone_give_text() -> None:
    tools = [{"name": "web_search", "type": "web_search_20250305"}]
    reply = make_reply(GenerationRequest(messages=user("hi"), tools=tools), "m", B)  # type: ignore[list-item]
    assert reply.content is None
    assert reply.finish_reason == "stop"


def test_a_prefilled_assistant_turn_gets_text_even_with_tools() -> None:
    messages = [*user("hi"), {"role": "assistant", "content": "Sure"}]
    reply = make_reply(GenerationRequest(messages=messages, tools=[TIME]), "m", B)
    assert reply.content is None
    assert reply.text.split() == words(digest(messages), 16)


# ---------------------------------------------------------------- tool results


def tool_turn(call_id: str = "toolu_1", result: Any = "22 degrees") -> list[dict[str, Any]]:
    return [
        *user("weather in Paris?"),
        {"role": "assistant", "content": [
            {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": '{"city":"Paris"}'}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_call_id": call_id, "content": result}]},
    ]


def test_tool_results_are_echoed_before_the_words() -> None:
    messages = tool_turn()
    reply = make_reply(GenerationRequest(messages=messages, tools=[WEATHER], max_tokens=4), "m", B)
    w = words(digest(messages), 4)
    assert reply.content is None
    assert reply.text == "Tool toolu_1 said: 22 degrees. " + " ".join(w)
    assert reply.pieces == ["Tool", " toolu_1", " said:", " 22", " degrees.", *(" " + x for x in w)]
    assert reply.finish_reason == "length"
    # "Tool toolu_1 said : 22 degrees ." = 7 runs, then 4 words
    assert reply.usage.output_tokens == 7 + 4


def test_several_tool_results_are_echoed_in_order_with_their_text_blocks() -> None:
    messages = [
        *user("a"),
        {"role": "assistant", "content": [
            {"type": "tool_call", "id": "c1", "name": "x", "arguments": "{}"},
            {"type": "tool_call", "id": "c2", "name": "y", "arguments": "{}"}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_call_id": "c1", "content": "one"},
            {"type": "tool_result", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]}]},
    ]
    reply = make_reply(GenerationRequest(messages=messages, max_tokens=1), "m", B)
    assert reply.text == f"Tool c1 said: one. Tool c2 said: two. {words(digest(messages), 1)[0]}"


# ---------------------------------------------------------------- structured output


def test_json_schema_answers_the_minimal_instance() -> None:
    messages = user("weather?")
    fmt = {"type": "json_schema", "name": "w", "schema": WEATHER["parameters"]}
    reply = make_reply(GenerationRequest(messages=messages, response_format=fmt), "m", B)  # type: ignore[arg-type]
    text = weather_arguments(digest(messages))
    assert reply.text == text
    assert reply.pieces == [text[: len(text) // 2], text[len(text) // 2 :]]
    assert reply.content is None
    assert (reply.finish_reason, reply.usage.output_tokens) == ("stop", count_text_tokens(text))


def test_json_object_answers_the_first_word() -> None:
    messages = user("anything")
    request = GenerationRequest(messages=messages, response_format={"type": "json_object"})
    reply = make_reply(request, "m", B)
    assert reply.text == f'{{"answer":"{words(digest(messages), 1)[0]}"}}'
    assert orjson.loads(reply.text) == {"answer": words(digest(messages), 1)[0]}


def test_structured_output_wins_over_the_echo_of_tool_results() -> None:
    messages = tool_turn()
    request = GenerationRequest(messages=messages, response_format={"type": "json_object"})
    assert orjson.loads(make_reply(request, "m", B).text) == {"answer": words(digest(messages), 1)[0]}


# ---------------------------------------------------------------- reasoning


def thinking_of(d: bytes) -> tuple[str, str]:
    text = " ".join(VOCAB[(d[j] + 32) % 64] for j in range(8))
    return text, base64.b64encode(hashlib.blake2b(text.encode(), digest_size=32).digest()).decode()


def test_reasoning_gives_anthropic_a_signed_thinking_block_first() -> None:
    messages = user("think")
    request = GenerationRequest(messages=messages, reasoning={"budget_tokens": 1024}, max_tokens=2000)
    reply = make_reply(request, "m", B)
    d = digest(messages)
    text, signature = thinking_of(d)
    assert reply.content == [
        {"type": "thinking", "text": text, "signature": signature},
        {"type": "text", "text": " ".join(words(d, 16))},
    ]
    assert reply.text == " ".join(words(d, 16))
    assert (reply.reasoning_tokens, reply.usage.reasoning_tokens, reply.usage.output_tokens) == (8, 8, 24)
    assert all(a != b for a, b in zip(text.split(), words(d, 8), strict=True))


def test_reasoning_takes_its_words_out_of_max_tokens() -> None:
    messages = user("think")
    request = GenerationRequest(messages=messages, reasoning={"effort": "low"}, max_tokens=12)
    reply = make_reply(request, "m", B)
    assert reply.text.split() == words(digest(messages), 4)
    assert (reply.finish_reason, reply.usage.output_tokens) == ("length", 12)


def test_openai_reasoning_counts_tokens_but_shows_no_thinking() -> None:
    messages = user("think")
    request = GenerationRequest(messages=messages, reasoning={"effort": "high"})
    reply = make_reply(request, "m", B, "openai")
    assert reply.content is None
    assert reply.text.split() == words(digest(messages), 16)
    assert (reply.usage.reasoning_tokens, reply.usage.output_tokens) == (8, 24)


def test_effort_none_and_no_reasoning_do_not_think() -> None:
    for reasoning in ({"effort": "none"}, {}):
        reply = make_reply(GenerationRequest(messages=user("x"), reasoning=reasoning, top_p=0.5), "m", B)  # type: ignore[arg-type]
        assert (reply.content, reply.reasoning_tokens) == (None, 0)


def test_reasoning_with_tools_thinks_then_calls() -> None:
    messages = user("x")
    request = GenerationRequest(messages=messages, tools=[TIME], reasoning={"adaptive": True})
    reply = make_reply(request, "m", B)
    assert reply.content is not None
    assert [b["type"] for b in reply.content] == ["thinking", "tool_call"]
    arguments = reply.content[1]["arguments"]
    assert reply.usage.output_tokens == 8 + count_text_tokens(arguments) + 1


# ---------------------------------------------------------------- n and logprobs


def test_openai_n_gives_choices_from_their_own_digests_and_sums_usage() -> None:
    messages = user("Hello there")
    reply = make_reply(GenerationRequest(messages=messages, n=3, max_tokens=5), "m", B, "openai")
    assert reply.text.split() == words(digest(messages), 5)  # choice 0 unchanged
    assert [c.text.split() for c in reply.choices] == [
        words(digest(messages, "m", None, 1), 5), words(digest(messages, "m", None, 2), 5)]
    assert reply.usage.output_tokens == 15
    assert reply.usage.input_tokens == 9
    assert [c.usage.output_tokens for c in reply.choices] == [5, 5]


def test_anthropic_ignores_n() -> None:
    reply = make_reply(GenerationRequest(messages=user("x"), n=2), "m", B)
    assert reply.choices == ()


def test_logprobs_give_one_entry_per_piece() -> None:
    messages = user("Hello there")
    reply = make_reply(GenerationRequest(messages=messages, logprobs=True, max_tokens=10), "m", B, "openai")
    assert reply.logprobs is not None
    entries = reply.logprobs["content"]
    assert reply.logprobs["refusal"] is None
    assert [e["token"] for e in entries] == reply.pieces
    assert [e["logprob"] for e in entries] == [-0.0625 * (k % 8) for k in range(10)]
    assert entries[1]["bytes"] == list(reply.pieces[1].encode())
    assert all(e["top_logprobs"] == [] for e in entries)


# ---------------------------------------------------------------- input tokens


def test_images_documents_and_tools_count_toward_input() -> None:
    image = {"type": "image", "media_type": "image/png", "data": "aGk="}
    document = {"type": "document", "media_type": "application/pdf", "data": "aGk="}
    messages = [{"role": "user", "content": [{"type": "text", "text": "look at this"}, image, document]}]
    request = GenerationRequest(messages=messages, tools=[TIME])
    tool_runs = count_text_tokens(orjson.dumps(TIME).decode())
    assert count_input_tokens(request) == 3 + (4 + 3 + 85 + 250) + 10 + tool_runs


def test_tool_calls_and_results_in_history_count_their_text() -> None:
    messages = tool_turn()
    # user "weather in Paris ?" 4; tool_call: get_weather 1 + { " city " : " Paris " } 9;
    # result "22 degrees" 2
    assert count_input_tokens(GenerationRequest(messages=messages)) == 3 + (4 + 4) + (4 + 10) + (4 + 2)


# ---------------------------------------------------------------- stream frames


def test_stream_frames_thinking_words_then_signature_then_text() -> None:
    messages = user("think")
    request = GenerationRequest(messages=messages, reasoning={"effort": "low"}, max_tokens=10)
    reply = make_reply(request, "m", B)
    text, signature = thinking_of(digest(messages))
    frames = stream_deltas(reply)
    thinking = text.split()
    assert frames == [
        *([Delta("thinking", 0, text=w if i == 0 else " " + w)] for i, w in enumerate(thinking)),
        [Delta("signature", 0, text=signature)],
        *([Delta("text", 1, text=p)] for p in reply.pieces),
    ]
    assert len(reply.pieces) == 2


def test_stream_frames_open_each_tool_call_then_send_its_arguments_in_two_pieces() -> None:
    messages = user("get_time get_weather")
    reply = make_reply(GenerationRequest(messages=messages, tools=[WEATHER, TIME]), "m", B)
    assert reply.content is not None
    first, second = reply.content
    a1, a2 = first["arguments"], second["arguments"]
    assert stream_deltas(reply) == [
        [Delta("tool_call", 0, id=first["id"], name="get_weather")],
        [Delta("tool_arguments", 0, text=a1[: len(a1) // 2])],
        [Delta("tool_arguments", 0, text=a1[len(a1) // 2 :])],
        [Delta("tool_call", 1, id=second["id"], name="get_time")],
        [Delta("tool_arguments", 1, text=a2[: len(a2) // 2])],
        [Delta("tool_arguments", 1, text=a2[len(a2) // 2 :])],
    ]


def test_stream_frames_carry_each_pieces_logprobs() -> None:
    reply = make_reply(GenerationRequest(messages=user("x"), logprobs=True, max_tokens=2), "m", B, "openai")
    assert reply.logprobs is not None
    entries = reply.logprobs["content"]
    assert stream_deltas(reply) == [
        [Delta("text", 0, text=reply.pieces[k]),
         Delta("logprobs", 0, value={"content": [entries[k]], "refusal": None})]
        for k in range(2)
    ]


def test_text_only_rich_requests_reply_as_plain_ones() -> None:
    plain = make_reply(GenerationRequest(messages=user("Hello there")), "m", B)
    rich = make_reply(GenerationRequest(messages=user("Hello there"), top_p=0.9, seed=1), "m", B)
    assert rich == plain
    assert plain.plain
