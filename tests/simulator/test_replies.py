"""The documented reply/usage function: exact counts, determinism, length and stop sequences."""

from __future__ import annotations

from greenlang_llm._types import GenerationRequest
from greenlang_llm.simulator.config import ModelBehaviour
from greenlang_llm.simulator.replies import VOCAB, count_input_tokens, count_text_tokens, make_reply


def test_text_tokens_are_word_and_punctuation_runs() -> None:
    assert count_text_tokens("Hello there") == 2
    assert count_text_tokens("Hi, you!  ok?") == 6
    assert count_text_tokens("") == 0


def test_input_tokens_are_three_plus_four_per_message_and_system() -> None:
    assert count_input_tokens(GenerationRequest(prompt="Hello there")) == 3 + 4 + 2
    request = GenerationRequest(
        system="Be brief.",
        messages=[
            {"role": "user", "content": "a b"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "c"}, {"type": "container_upload", "file_id": "f"}]},
        ],
    )
    assert count_input_tokens(request) == 3 + (4 + 3) + (4 + 2) + (4 + 1)


def test_reply_is_deterministic_per_model_and_prompt() -> None:
    request = GenerationRequest(prompt="Hello there")
    behaviour = ModelBehaviour()
    first = make_reply(request, "m", behaviour)
    assert first == make_reply(GenerationRequest(prompt="Hello there"), "m", behaviour)
    assert first.text != make_reply(request, "n", behaviour).text
    assert first.text != make_reply(GenerationRequest(prompt="Hello you"), "m", behaviour).text
    assert all(word in VOCAB for word in first.text.split())
    assert first.pieces[0] == first.text.split()[0]
    assert all(piece.startswith(" ") for piece in first.pieces[1:])


def test_max_tokens_below_reply_tokens_cuts_with_length() -> None:
    behaviour = ModelBehaviour(reply_tokens=10)
    short = make_reply(GenerationRequest(prompt="x", max_tokens=4), "m", behaviour)
    assert (short.usage.output_tokens, short.finish_reason) == (4, "length")
    full = make_reply(GenerationRequest(prompt="x", max_tokens=10), "m", behaviour)
    assert (full.usage.output_tokens, full.finish_reason) == (10, "stop")
    assert full.text.startswith(short.text)


def test_stop_sequence_equal_to_a_word_cuts_before_it() -> None:
    behaviour = ModelBehaviour(reply_tokens=20)
    words = make_reply(GenerationRequest(prompt="x"), "m", behaviour).text.split()
    stop = words[5]
    cut = make_reply(GenerationRequest(prompt="x", stop=[stop, "zzz"]), "m", behaviour)
    assert cut.finish_reason == "stop_sequence"
    assert cut.stop_sequence == stop
    assert cut.text.split() == words[: words.index(stop)]
    assert cut.usage.output_tokens == words.index(stop)


def test_cache_tokens_are_added_to_input_as_cache_reads_and_writes() -> None:
    behaviour = ModelBehaviour(cache_read_tokens=1000, cache_write_tokens=50)
    usage = make_reply(GenerationRequest(prompt="Hello there"), "m", behaviour).usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1059, 1000, 50)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
