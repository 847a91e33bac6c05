"""The simulator's reply and usage: a pure, documented function of the request.

Tests assert exact token counts, so nothing here is random:

- ``count_input_tokens(request)`` = 3 (reply priming) + for the system prompt
  and every message: 4 + the number of word and punctuation runs in its text
  (``re.findall(r"\\w+|[^\\w\\s]", text)``). Non-text blocks count 0.
  ``POST /v1/messages/count_tokens`` answers this plus the model's simulated cache
  tokens.
- The reply is ``N = min(max_tokens, reply_tokens)`` words from a fixed
  64-word vocabulary, chosen by the BLAKE2b digest of
  ``[model, system, messages]``: word ``i`` is ``VOCAB[(d[i % 32] + 7 * (i // 32)) % 64]``.
  Each word is one output token and one stream delta (``"w0"``, ``" w1"``, ...).
- ``finish_reason`` is ``length`` when ``max_tokens < reply_tokens``, else ``stop``;
  a stop sequence equal to one of the words ends the reply just before that word
  (``stop_sequence``).
- **Continuation**: when the last message is the assistant's and its text (trailing
  whitespace ignored) is a whole-word prefix of the reply the request *without* it
  would get, the reply is the rest of that reply: words ``k .. k + max_tokens`` after
  the ``k`` prefilled words, each with its leading space, finish ``length`` only if
  that still stops short of ``reply_tokens``. A model's ``echo_words = n`` makes the
  continuation first repeat the prefill's last ``n`` words (as real models sometimes
  do). Any other trailing assistant message is just part of the prompt.
- input tokens = the count above + ``cache_read_tokens`` + ``cache_write_tokens`` of
  the model (a simulated cached prefix), which are reported as cache reads/writes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson

from .._types import GenerationRequest, TokenUsage
from ..wire._common import message_text
from .config import ModelBehaviour

__all__ = ["VOCAB", "Reply", "count_input_tokens", "count_text_tokens", "make_reply"]

VOCAB = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber", "basil", "cedar", "dune",
    "ember", "fern", "grove", "harbor", "island", "jasper", "kelp", "lagoon", "meadow", "nectar",
    "orchard", "pebble", "quartz", "river", "summit", "thistle", "umber", "valley", "willow",
    "yarrow", "zephyr", "acorn", "birch", "canyon", "dawn", "estuary", "fjord", "glacier", "heath",
    "inlet", "jungle", "knoll", "lotus", "marsh",
)
assert len(VOCAB) == 64

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_text_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def count_input_tokens(request: GenerationRequest) -> int:
    total = 3
    if request.system:
        total += 4 + count_text_tokens(request.system)
    for message in request.to_messages():
        total += 4 + count_text_tokens(message_text(message["content"]))
    return total


@dataclass(frozen=True, slots=True)
class Reply:
    pieces: list[str]
    finish_reason: str
    usage: TokenUsage
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _words(request: GenerationRequest, model: str, n: int) -> list[str]:
    key = orjson.dumps([model, request.system, request.to_messages()], option=orjson.OPT_SORT_KEYS)
    digest = hashlib.blake2b(key, digest_size=32).digest()
    return [VOCAB[(digest[i % 32] + 7 * (i // 32)) % 64] for i in range(n)]


def _continuation(
    request: GenerationRequest, model: str, behaviour: ModelBehaviour
) -> tuple[list[str], int] | None:
    """The words after a prefill that starts the reply the request without it would get, and the
    prefill's word count; else None."""
    messages = request.to_messages()
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        return None
    prefill = message_text(messages[-1]["content"]).rstrip()
    if not prefill:
        return None
    base = GenerationRequest(messages=messages[:-1], system=request.system, max_tokens=behaviour.reply_tokens)
    full = _words(base, model, behaviour.reply_tokens)
    done = prefill.split(" ")
    if full[: len(done)] != done:
        return None
    rest = full[len(done) : len(done) + request.max_tokens]
    echo = done[len(done) - min(behaviour.echo_words, len(done)) :] if behaviour.echo_words else []
    return echo + rest, len(done)


def make_reply(request: GenerationRequest, model: str, behaviour: ModelBehaviour) -> Reply:
    n = min(request.max_tokens, behaviour.reply_tokens)
    finish = "length" if request.max_tokens < behaviour.reply_tokens else "stop"
    continued = _continuation(request, model, behaviour)
    if continued is not None:
        words, done = continued
        finish = "length" if done + request.max_tokens < behaviour.reply_tokens else "stop"
    else:
        words = _words(request, model, n)
    stop_sequence = None
    if request.stop:
        stops = set(request.stop)
        for i, word in enumerate(words):
            if word in stops:
                words, finish, stop_sequence = words[:i], "stop_sequence", word
                break
    if continued is not None:  # every continued word follows the prefill's last word: each has its space
        pieces = [" " + w for w in words]
    else:
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    read, write = behaviour.cache_read_tokens, behaviour.cache_write_tokens
    input_tokens = count_input_tokens(request) + read + write
    usage = TokenUsage(
        input_tokens=input_tokens,
        output_tokens=len(words),
        total_tokens=input_tokens + len(words),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
    return Reply(pieces, finish, usage, stop_sequence)
