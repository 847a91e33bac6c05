"""The neutral content model: every API's shapes normalised, each kept where it has meaning."""

from __future__ import annotations

import pytest

from greenlang_llm import GenerationRequest, InvalidRequestError
from greenlang_llm.content import normalize_block, normalize_messages
from greenlang_llm.wire import anthropic, openai


@pytest.mark.parametrize(
    ("block", "neutral"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD", "detail": "high"}},
         {"type": "image", "media_type": "image/png", "data": "QUJD", "detail": "high"}),
        ({"type": "image_url", "image_url": {"url": "https://x/a.png"}}, {"type": "image", "url": "https://x/a.png"}),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QQ"},
          "cache_control": {"type": "ephemeral"}},
         {"type": "image", "media_type": "image/jpeg", "data": "QQ", "cache_control": {"type": "ephemeral"}}),
        ({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}, "title": "A"},
         {"type": "document", "url": "https://x/a.pdf", "title": "A"}),
        ({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
         {"type": "document", "media_type": "application/pdf", "data": "JVBE", "title": "a.pdf"}),
        ({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
         {"type": "tool_call", "id": "toolu_1", "name": "f", "arguments": '{"a":1}'}),
        ({"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": True},
         {"type": "tool_result", "tool_call_id": "toolu_1", "content": "ok", "is_error": True}),
        ({"type": "thinking", "thinking": "hmm", "signature": "sig"},
         {"type": "thinking", "text": "hmm", "signature": "sig"}),
        ({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
         {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}),
    ],
)
def test_each_apis_block_becomes_the_neutral_one(
    block: dict[str, object], neutral: dict[str, object]
) -> None:
    assert normalize_block(block) == neutral


def test_openai_tool_messages_and_calls_become_blocks_of_alternating_turns() -> None:
    messages = normalize_messages([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "w", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "cold"},
        {"role": "tool", "tool_call_id": "c2", "content": "warm"},
    ])
    assert messages[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_call", "id": "c1", "name": "w", "arguments": '{"city":"Oslo"}'},
        {"type": "tool_call", "id": "c2", "name": "w", "arguments": '{"city":"Rome"}'}]}
    assert messages[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_call_id": "c1", "content": "cold"},
        {"type": "tool_result", "tool_call_id": "c2", "content": "warm"}]}
    assert len(messages) == 3


def test_a_string_content_costs_nothing_and_stays_a_string() -> None:
    request = GenerationRequest(messages=[{"role": "user", "content": "hi"}])
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert not request.rich


@pytest.mark.parametrize(
    "message",
    [
        {"role": "tool", "content": "x"},
        {"role": "user", "content": [{"type": "image", "source": "nope"}]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {}}]},
    ],
)
def test_malformed_blocks_are_refused_before_any_call(message: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        GenerationRequest(messages=[{"role": "user", "content": "q"}, message])


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "x"}]}},
    ],
)
def test_an_anthropic_only_source_is_sent_to_claude_as_it_is_and_refused_by_openai(
    block: dict[str, object],
) -> None:
    request = GenerationRequest(messages=[{"role": "user", "content": [block]}])
    assert request.messages == [{"role": "user", "content": [block]}]
    assert anthropic.fit(request).refused == ()
    assert anthropic.build_request(request, "claude", stream=False)["messages"][0]["content"] == [block]
    assert openai.fit(request).refused == (f"messages[0].content[0]: {block['type']}",)


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ({"type": "text", "text": 5}, "string 'text'"),
        ({"type": "image"}, "'data' (base64) or 'url'"),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/png"}}, "source.data"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64"}}, "not a base64 data URI"),
        ({"type": "document", "media_type": "application/pdf"}, "'data' (base64) or 'url'"),
        ({"type": "tool_result", "content": "ok"}, "id of its tool call"),
    ],
)
def test_a_block_that_cannot_be_sent_is_a_400_naming_it(block: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidRequestError, match="messages\\[0\\]") as caught:
        GenerationRequest(messages=[{"role": "user", "content": [block]}])
    assert says in str(caught.value)


def test_a_documents_citations_and_context_reach_claude_and_are_named_when_gpt_drops_them() -> None:
    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}
    document = {"type": "document", "source": source, "citations": {"enabled": True}, "context": "Q3 report"}
    request = GenerationRequest(messages=[{"role": "user", "content": [document]}])
    sent = anthropic.build_request(request, "claude", stream=False)["messages"][0]["content"][0]
    assert sent["citations"] == {"enabled": True}
    assert sent["context"] == "Q3 report"
    assert openai.fit(request).dropped == ("document.context", "document.citations")


def test_an_openai_assistant_audio_turn_is_refused_by_claude_and_sent_as_it_came_to_gpt() -> None:
    body = {"model": "m", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "audio": {"id": "audio_1"}},
        {"role": "user", "content": "again"}]}
    request, _ = openai.parse_request(body)
    assert anthropic.fit(request).refused == ("messages[1].content[0]: assistant_audio",)
    assert openai.build_request(request, "gpt", stream=False)["messages"] == body["messages"]


def test_a_json_schema_description_is_named_when_claude_drops_it() -> None:
    fmt = {"type": "json_schema", "name": "r", "description": "the answer", "schema": {"type": "object"}}
    request = GenerationRequest(prompt="x", response_format=fmt)  # type: ignore[typeddict-item]
    assert anthropic.fit(request).dropped == ("response_format.description",)
