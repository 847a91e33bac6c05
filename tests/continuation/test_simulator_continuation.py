"""The simulator continues an assistant prefill that starts the reply it would give (replies.py)."""

from __future__ import annotations

from greenlang_llm._types import GenerationRequest
from greenlang_llm.simulator.config import ModelBehaviour
from greenlang_llm.simulator.replies import make_reply

PLAIN = ModelBehaviour(reply_tokens=60)
ASK = [{"role": "user", "content": "Tell me a story"}]


def reply_to(prefill: str | None, max_tokens: int = 200, behaviour: ModelBehaviour = PLAIN) -> list[str]:
    messages = ASK + ([{"role": "assistant", "content": prefill}] if prefill is not None else [])
    return make_reply(GenerationRequest(messages=messages, max_tokens=max_tokens), "m", behaviour).pieces


def test_a_prefix_prefill_gets_exactly_the_rest_of_the_reply() -> None:
    full = reply_to(None)
    rest = reply_to("".join(full[:40]))
    assert "".join(full[:40]) + "".join(rest) == "".join(full)
    assert len(rest) == 20


def test_trailing_whitespace_of_the_prefill_is_ignored() -> None:
    full = reply_to(None)
    assert reply_to("".join(full[:10]) + " ") == full[10:]


def test_max_tokens_counts_only_the_continued_words() -> None:
    full = reply_to(None)
    request = GenerationRequest(messages=[*ASK, {"role": "assistant", "content": "".join(full[:40])}],
                                max_tokens=5)
    reply = make_reply(request, "m", PLAIN)
    assert reply.pieces == full[40:45]
    assert reply.finish_reason == "length"
    assert reply.usage.output_tokens == 5


def test_echo_words_repeats_the_end_of_the_prefill_first() -> None:
    full = reply_to(None)
    rest = reply_to("".join(full[:40]), behaviour=ModelBehaviour(reply_tokens=60, echo_words=3))
    assert rest == [" " + w.strip() for w in full[37:40]] + full[40:]


def test_any_other_prefill_is_just_part_of_the_prompt() -> None:
    full = reply_to(None)
    other = reply_to("Something else entirely")
    assert other != full[4:]
    assert len(other) == 60
