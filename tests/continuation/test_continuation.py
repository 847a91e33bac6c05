"""continuation.py: the seam between delivered text and a continuation, relaying a restarted answer,
the prefill request, the sum."""

from __future__ import annotations

import pytest

from greenlang_llm._types import GenerationRequest, TokenUsage
from greenlang_llm.continuation import (
    SEAM_HOLD,
    Resume,
    Seam,
    SplitUsage,
    UsagePart,
    combine,
    prefill_request,
)


def join(delivered: str, *pieces: str) -> str:
    seam = Seam(delivered)
    return delivered + "".join(seam.feed(p) for p in pieces) + seam.flush()


@pytest.mark.parametrize(("delivered", "pieces", "expected"), [
    ("the quick brown", (" fox", " jumps"), "the quick brown fox jumps"),
    ("the quick brown", (" quick brown", " fox"), "the quick brown fox"),  # a repeated opening
    ("the quick brown", ("quick brown fox",), "the quick brown fox"),
    ("the quick ", (" brown", " fox"), "the quick brown fox"),  # no second space at the seam
    ("the quick ", ("brown fox",), "the quick brown fox"),
    ("very", (" very", " good"), "very very good"),  # one repeated word is kept: often real text
    ("hel", ("lo world",), "hello world"),  # a cut inside a word
    ("a b c d", ("c d e",), "a b c d e"),
    ("the seabrown fox", (" brown fox", " ran"), "the seabrown fox brown fox ran"),  # not at a word start
])
def test_the_seam_joins_without_repeats_or_doubled_spaces(
        delivered: str, pieces: tuple[str, ...], expected: str) -> None:
    assert join(delivered, *pieces) == expected


def test_the_seam_holds_only_its_first_characters_then_passes_through() -> None:
    seam = Seam("one two")
    assert seam.feed(" three") == ""
    released = seam.feed(" x" * SEAM_HOLD)
    assert released.startswith(" three x")
    assert seam.feed(" next") == " next"
    assert seam.flush() == ""


def test_the_prefill_request_is_the_same_request_plus_the_delivered_text() -> None:
    request = GenerationRequest(prompt="Tell me", system="Be brief.", temperature=0.2, max_tokens=100,
                                stop=["END"], timeout=5.0)
    continued = prefill_request(request, "Once upon a time ", 7)
    assert continued.to_messages() == [{"role": "user", "content": "Tell me"},
                                       {"role": "assistant", "content": "Once upon a time"}]
    assert (continued.system, continued.temperature, continued.stop) == ("Be brief.", 0.2, ["END"])
    assert continued.max_tokens == 93
    assert continued.timeout == 5.0
    assert prefill_request(request, "x", 500).max_tokens == 1
    assert request.to_messages() == [{"role": "user", "content": "Tell me"}]  # the original is untouched


def test_combined_usage_sums_every_part_and_keeps_them() -> None:
    a = TokenUsage(10, 40, 50, 0.01, 0.04, 0.05, cache_read_tokens=4, estimated=True)
    b = TokenUsage(60, 20, 80, 0.06, 0.02, 0.08, cache_write_tokens=6)
    total = combine([UsagePart("a", "m1", a), UsagePart("b", "m2", b)])
    assert isinstance(total, SplitUsage)
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (70, 60, 130)
    assert (total.cache_read_tokens, total.cache_write_tokens) == (4, 6)
    assert total.total_cost_usd == pytest.approx(0.13)
    assert total.input_cost_usd + total.output_cost_usd == pytest.approx(total.total_cost_usd)
    assert total.estimated
    assert [p.provider for p in total.parts] == ["a", "b"]
    assert combine([UsagePart("a", "m1", a)]) is a


def resume(delivered: str, *pieces: str) -> tuple[list[str], bool]:
    r = Resume(delivered)
    out = [r.feed(p) for p in pieces]
    r.finish()
    return out, r.diverged


@pytest.mark.parametrize(("delivered", "pieces", "relayed"), [
    ("the quick brown", ("the", " quick", " brown", " fox", " jumps"), " fox jumps"),
    ("the quick  brown ", ("  the", " quick\n", "brown", " fox"), "fox"),  # whitespace runs are one space
    ("the quick brown ", ("the quick brown", " ", " fox"), "fox"),  # the client's space is not printed twice
    ("the quick bro", ("the quick brown fox",), "wn fox"),  # a cut inside a word
    ("the quick brown", ("the quick brown",), ""),
    ("Total: 1\n", ("Total: 1", "\n\n2 items",), "2 items"),  # the caller's newline, then a new word
    ("the quick brown ", ("the quick brown",), ""),  # ends where the caller's text does: nothing missing
])
def test_a_restarted_answer_is_relayed_only_past_what_was_delivered(
        delivered: str, pieces: tuple[str, ...], relayed: str) -> None:
    out, diverged = resume(delivered, *pieces)
    assert "".join(out) == relayed
    assert not diverged


def test_resume_holds_back_only_until_it_can_decide() -> None:
    r = Resume("one two")
    assert r.feed("one") == ""
    assert not r.open
    assert r.feed(" two three") == " three"  # released in the same delta that completes the match
    assert r.open
    assert r.feed(" four") == " four"


@pytest.mark.parametrize(("delivered", "pieces"), [
    ("the quick brown", ("the", " slow", " brown fox")),  # departs from it
    ("the quick brown", ("thequick brown fox",)),  # a missing space is a different text
    ("the quick brown", ("the", " quick")),  # ends before reaching its end
    ("the quick brown", ()),
    # the caller's text ends between words, the answer's does not (found in review)
    ("Total: 1\n", ("Total: 12\nDone",)),
    ("Hello world\n", ("Hello worldwide\n",)),
    ("Hello ", ("Hello, world",)),
    ("Hello ", ("Hello", ", world")),
])
def test_a_restarted_answer_that_does_not_begin_with_the_delivered_text_diverges_and_relays_nothing(
        delivered: str, pieces: tuple[str, ...]) -> None:
    out, diverged = resume(delivered, *pieces, " and more")
    assert diverged
    assert "".join(out) == ""


def test_a_restarted_answer_that_ends_short_of_the_delivered_text_diverges() -> None:
    out, diverged = resume("the quick brown", "the", " quick")
    assert out == ["", ""]
    assert diverged
