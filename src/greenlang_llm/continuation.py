"""Mid-stream continuation: finish a cut stream on another provider as one seamless answer.

When a stream breaks after text reached the caller, the router asks the next
provider for the *same* request plus the delivered text as an assistant prefill
(:func:`prefill_request`). Three things make the join invisible to the caller:

- **The prefill has no trailing whitespace.** Anthropic rejects a final assistant
  turn ending in whitespace, and a model continues a word boundary better when it
  supplies the space itself. Whitespace the caller already received is remembered,
  so a continuation that starts with a space does not print a second one.
- **A repeated opening is dropped** (:class:`Seam`). Models often restart a
  continuation by repeating the last few words ("... the quick brown" → " brown fox").
  The seam holds the continuation's first ``SEAM_HOLD`` characters back, finds the
  longest overlap that is whole words on both sides and at least
  ``MIN_OVERLAP`` words (a single repeated word, "very very", is more often real
  text than an echo), and drops it.
- **A restarted answer is relayed from where the caller is** (:class:`Resume`). A
  provider that refuses the prefill (known from ``supports_prefill``, or learned from its
  400) is asked the original request instead; its fresh answer is passed on only after the
  point the caller already has, when it begins with the delivered text (whitespace runs
  compared as one space), and is unusable otherwise: it cannot be joined without showing
  the caller a second, different beginning.
- **One usage for the caller.** :func:`combine` sums tokens and costs of every
  upstream call of the answer into a :class:`SplitUsage` that still lists each
  call (provider, model, usage), so metrics and the gateway's ledger can attribute
  each part to the provider that produced it.
"""

from __future__ import annotations

import dataclasses
import logging

from ._types import GenerationRequest, Message, SplitUsage, TokenUsage, UsagePart
from .content import WireOrigin

__all__ = ["MIN_OVERLAP", "SEAM_HOLD", "Resume", "Seam", "SplitUsage", "UsagePart", "combine",
           "estimate_part", "prefill_request"]

logger = logging.getLogger(__name__)

SEAM_HOLD = 48
"""Characters of a continuation held back to find a repeated opening (or the whole reply if shorter)."""
MIN_OVERLAP = 2
"""Fewest whole words an overlap must have to be treated as an echo (one repeated word is too often real)."""


def combine(parts: list[UsagePart]) -> TokenUsage:
    """One usage for the caller: tokens and costs of every part; estimated if any part is."""
    if len(parts) == 1:
        return parts[0].usage
    total = SplitUsage(0, 0, 0, parts=tuple(parts))
    for part in parts:
        u = part.usage
        total.input_tokens += u.input_tokens
        total.output_tokens += u.output_tokens
        total.total_tokens += u.total_tokens
        total.input_cost_usd += u.input_cost_usd
        total.output_cost_usd += u.output_cost_usd
        total.total_cost_usd += u.total_cost_usd
        total.cache_read_tokens += u.cache_read_tokens
        total.cache_write_tokens += u.cache_write_tokens
        total.reasoning_tokens += u.reasoning_tokens
        total.estimated = total.estimated or u.estimated
    # float sums of exact per-part costs: round to the ledger's nano-dollar grain
    total.input_cost_usd = round(total.input_cost_usd, 9)
    total.output_cost_usd = round(total.output_cost_usd, 9)
    total.total_cost_usd = round(total.total_cost_usd, 9)
    return total


def estimate_part(provider_name: str, model_id: str, request: GenerationRequest, text: str,
                  count_prompt: int | None) -> TokenUsage:
    """Usage of a call that broke before reporting its own: local counts, priced, ``estimated``."""
    try:
        from .pricing import price_usage
        from .tokens import count_text_tokens

        # never more than the call could bill: a local tokenizer may count another model's text high
        output = min(count_text_tokens(text, model_id), request.max_tokens) if text else 0
        return price_usage(provider_name, model_id, count_prompt or 0, output, estimated=True)
    except Exception:
        logger.warning("could not price the interrupted part of a stream", exc_info=True)
        words = len(text.split())
        return TokenUsage(count_prompt or 0, words, (count_prompt or 0) + words, estimated=True)


def prefill_request(request: GenerationRequest, delivered: str, output_tokens: int) -> GenerationRequest:
    """``request`` plus ``delivered`` as the unfinished assistant turn; ``max_tokens`` less the used ones.

    Every field beyond text is kept (tools, response format, sampling...), except ``reasoning``:
    the caller already has the thinking, and a provider asked to think again would have to start
    a thinking block in the middle of the answer (Anthropic refuses a prefill under thinking).
    The caller's own body (``origin``) is kept with the same change made in its API's shape, so a
    provider of the caller's API still receives every field the caller sent."""
    messages: list[Message] = [dict(m) for m in request.to_messages()]
    text = delivered.rstrip()
    messages.append({"role": "assistant", "content": text})
    max_tokens = max(1, request.max_tokens - output_tokens)
    origin = request.origin
    return dataclasses.replace(
        request,
        prompt=None,
        messages=messages,
        max_tokens=max_tokens,
        stop=list(request.stop) if request.stop else None,
        metadata=dict(request.metadata),
        reasoning=None,
        origin=None if origin is None else _prefilled_origin(origin, text, max_tokens),
    )


_TOKEN_FIELDS = {"openai": ("max_completion_tokens", "max_tokens"), "anthropic": ("max_tokens",)}


def _prefilled_origin(origin: WireOrigin, text: str, max_tokens: int) -> WireOrigin | None:
    """The caller's body with the prefill appended and the output limit lowered (both APIs spell an
    assistant turn the same way); None for an API this module does not know (the neutral request
    is then sent)."""
    fields = _TOKEN_FIELDS.get(origin.api)
    messages = origin.body.get("messages")
    if fields is None or not isinstance(messages, list):
        return None
    body = {k: v for k, v in origin.body.items() if k not in ("thinking", "reasoning_effort")}
    body["messages"] = [*messages, {"role": "assistant", "content": text}]
    limit = next((f for f in fields if body.get(f) is not None), fields[0])
    body[limit] = max_tokens
    config = body.get("output_config")
    if isinstance(config, dict) and "effort" in config:
        body["output_config"] = {k: v for k, v in config.items() if k != "effort"}
    return WireOrigin(origin.api, body, origin.unknown, origin.plain)


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class Seam:
    """Joins a continuation onto ``delivered``: drops a repeated opening and doubled whitespace.

    Feed it the continuation's deltas; it returns the text to pass on (possibly "")
    until ``SEAM_HOLD`` characters were seen, then passes everything through.
    Call :meth:`flush` when the continuation ends to release what it still holds.
    """

    __slots__ = ("_delivered", "_held", "_open")

    def __init__(self, delivered: str) -> None:
        self._delivered = delivered
        self._held = ""
        self._open = False

    def feed(self, text: str) -> str:
        if self._open:
            return text
        self._held += text
        if len(self._held) < SEAM_HOLD:
            return ""
        return self.flush()

    def flush(self) -> str:
        if self._open:
            return ""
        self._open = True
        text, self._held = self._held, ""
        return self._join(text)

    def _join(self, text: str) -> str:
        delivered = self._delivered
        cut = self._overlap(text)
        if cut:
            text = text[cut:]
        if delivered[-1:].isspace() and text[:1].isspace():
            text = text.lstrip()
        return text

    def _overlap(self, text: str) -> int:
        """Length of the longest prefix of ``text`` that ``delivered`` ends with, on word boundaries."""
        delivered = self._delivered.rstrip()
        body = text.lstrip()
        lead = len(text) - len(body)
        best = 0
        for end in range(len(body), 0, -1):
            if end < len(body) and _word_char(body[end - 1]) and _word_char(body[end]):
                continue  # not a word end in the continuation
            piece = body[:end].rstrip()
            if len(piece.split()) < MIN_OVERLAP or not delivered.endswith(piece):
                continue
            start = len(delivered) - len(piece)
            if start > 0 and _word_char(delivered[start - 1]) and _word_char(piece[0]):
                continue  # not a word start in what was delivered
            best = lead + len(piece)
            break
        return best


class Resume:
    """Relays a restarted answer (the original request asked again) from where the caller is.

    Feed it the fresh answer's deltas: while they still spell the delivered text (runs of
    whitespace on either side count as one space; leading whitespace is ignored) it returns
    "" and holds nothing else back; from the first character past the delivered text on it
    returns what is new (without a space the caller already has), then passes everything
    through. The moment the answer departs from the delivered text, or ends before reaching
    its end (:meth:`finish`), ``diverged`` is set and nothing more is relayed: the caller
    would otherwise see two beginnings.
    """

    __slots__ = ("_at", "_strip", "_target", "diverged")

    def __init__(self, delivered: str) -> None:
        target = " ".join(delivered.split())
        self._strip = delivered[-1:].isspace()
        """The caller's text ends in whitespace: drop the answer's own before the next word."""
        if target and self._strip:
            # the caller's text ends between words, so the answer must too: "Total: 1\n" is not
            # the beginning of "Total: 12", nor "Hello " of "Hello, world"
            target += " "
        self._target = target
        """The delivered text, whitespace-normalised: what the fresh answer must begin with."""
        self._at = 0 if target else -1
        """Characters of ``_target`` matched so far; -1 once it was matched in full."""
        self.diverged = False

    @property
    def open(self) -> bool:
        """The delivered text was matched: everything from here on is new to the caller."""
        return self._at < 0

    def feed(self, text: str) -> str:
        if self.diverged:
            return ""
        if self._at < 0:
            return self._new(text)
        target, at = self._target, self._at
        for i, c in enumerate(text):
            if c.isspace():
                if at == 0 or target[at - 1] == " ":
                    continue  # leading whitespace, or more of a run already matched as one space
                if target[at] != " ":
                    return self._diverge()
                at += 1
                if at == len(target):  # the delivered text ended in whitespace: matched
                    self._at = -1
                    return self._new(text[i + 1:])
            elif target[at] == c:
                at += 1
                if at == len(target):
                    self._at = -1
                    return self._new(text[i + 1:])
            else:
                return self._diverge()
        self._at = at
        return ""

    def finish(self) -> None:
        """The fresh answer ended: if it never reached the end of the delivered text, it diverged.

        An answer that ends exactly where the caller's text ends but for its trailing whitespace
        is the same answer: nothing is missing."""
        at, target = self._at, self._target
        if at >= 0 and not (at == len(target) - 1 and target.endswith(" ")):
            self.diverged = True

    def _new(self, text: str) -> str:
        if self._strip:
            text = text.lstrip()
            self._strip = not text
        return text

    def _diverge(self) -> str:
        self.diverged = True
        return ""
