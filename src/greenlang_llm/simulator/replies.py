"""The simulator's reply and usage: a pure, documented function of the request.

Tests assert exact token counts, so nothing here is random:

- ``count_input_tokens(request)`` = 3 (reply priming) + for the system prompt
  and every message: 4 + the number of word and punctuation runs in its text
  (``re.findall(r"\\w+|[^\\w\\s]", text)``) + for each tool definition: 10 + the
  runs in its JSON text (``orjson.dumps(tool)``). A message's text is its text blocks
  joined, then each further block adds: a ``tool_call`` the runs of its name and of its
  arguments, a ``tool_result`` the runs of its text (a string, or its text blocks), a
  ``thinking`` block the runs of its text, an ``image`` (with ``data`` or ``url``) **85**,
  a ``document`` (with ``data``, ``url`` or ``text``) **250**, also inside tool results.
  Other blocks count 0. ``POST /v1/messages/count_tokens`` answers this plus the model's
  simulated cache tokens.
- The reply is ``N = min(max_tokens, reply_tokens)`` words from a fixed
  64-word vocabulary, chosen by the BLAKE2b digest ``d`` (32 bytes) of
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
  do). Any other trailing assistant message is just part of the prompt. A request whose
  last message is the assistant's always gets text (the rules below about tool calls,
  structured output and thinking apply only when the last message is a user turn).
- input tokens = the count above + ``cache_read_tokens`` + ``cache_write_tokens`` of
  the model (a simulated cached prefix), which are reported as cache reads/writes.

Beyond text: requests with tools, a ``response_format``, ``reasoning``, ``logprobs``,
``n > 1``, or a last turn made of content blocks, whose last message is a user turn (the
plain path above, and its speed, are untouched for the rest; a text-only answer comes out
the same on both paths). ``api`` is ``anthropic`` or ``openai``; ``d`` is the digest above.
A continuation after a thinking block is a prefill: text only, as above (the prefill's
thinking block is not text, so it does not disturb the match).

- **Tool calls**: when the request has function tools (tools without a ``type``), its
  ``tool_choice`` is not ``"none"`` and the last user turn holds no ``tool_result`` block,
  the answer is tool calls instead of text: ``tool_choice {"name": t}`` → tool ``t``; else
  the tools, in ``tools`` order, whose names appear in the last user turn's text as words
  (not touching a letter, digit, ``_`` or ``-``) — all of them, or only the first when
  ``parallel_tool_calls`` is False; else the first tool (``auto``, ``required`` and no
  choice alike). Call ``k``: id ``toolu_sim`` (Anthropic) / ``call_sim`` (OpenAI) + the
  first 16 hex digits of ``d`` + ``k``; arguments = the compact JSON
  (``orjson.dumps``) of :func:`~.schema_instance.minimal_instance` of the tool's
  ``parameters`` with ``d``. Finish ``tool_calls``; output tokens = for each call the runs
  of its arguments text + the runs of its name. ``max_tokens`` does not cut tool calls.
- **Tool results echoed**: when the last user turn holds ``tool_result`` blocks, the text
  is ``"Tool <tool_call_id> said: <its text>."`` for each result (joined by one space;
  a result's text is its string, or its text blocks joined), then the ``N`` words, each
  with a leading space. Output tokens = the runs of the echo + ``N``. Stop sequences
  apply to the words only.
- **Structured output**: ``response_format`` ``json_schema`` → the text is the compact
  JSON of the minimal instance of its ``schema`` (with ``d``); ``json_object`` →
  ``{"answer":"<word 0>"}``. Output tokens = the runs of that text; finish ``stop``;
  tool calls win over it, and it wins over the echo (the answer must parse).
- **Reasoning**: when ``request.reasoning`` asks for it (an ``effort`` other than
  ``none``, a ``budget_tokens``, or ``adaptive``), the model thinks ``K = min(8,
  max_tokens)`` words first: thinking word ``j`` is ``VOCAB[(d[j] + 32) % 64]`` (never
  the reply's word ``j``). They take ``K`` of ``max_tokens``: ``N = min(max_tokens - K,
  reply_tokens)``, finish ``length`` when ``max_tokens - K < reply_tokens``. Reasoning
  tokens = ``K``, inside the output tokens on both APIs. Anthropic answers start with
  ``{"type": "thinking", "text": <words joined by spaces>, "signature": base64(blake2b(
  text, digest_size=32))}``; OpenAI shows no thinking (only
  ``completion_tokens_details.reasoning_tokens``).
- **n > 1** (OpenAI): choice ``i`` is the reply the rules above give with the digest of
  ``[model, system, messages, i]`` (choice 0 keeps ``d``), in ``Reply.choices``;
  the top-level usage has the sum of every choice's output (and reasoning) tokens.
- **logprobs** (OpenAI ``logprobs: true``): each choice gets ``{"content": [{"token":
  piece, "logprob": -0.0625 * (k % 8), "bytes": list(piece.encode()), "top_logprobs":
  []} for the k-th text piece], "refusal": None}``.
- **Streams** (:func:`stream_deltas`): one frame per thinking word (then one for the
  signature), per text piece (with its logprobs entry), and per tool call: one frame
  opening it and two with its arguments text split at ``len // 2``. Structured output text
  is two pieces split the same way; echoed tool results are one piece per space-separated
  word.
- **Tool ids are checked** (:func:`tool_id_error`) on the body as sent, as the real APIs do:
  a tool result must answer a call of the previous assistant turn, and every call of an
  assistant turn that is not the last message must be answered by the next turn.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .._types import GenerationRequest, TokenUsage
from ..content import Block, Delta
from ..wire._common import message_text
from .config import ModelBehaviour
from .schema_instance import minimal_instance

__all__ = [
    "DOCUMENT_TOKENS",
    "IMAGE_TOKENS",
    "THINKING_WORDS",
    "VOCAB",
    "Reply",
    "count_input_tokens",
    "count_text_tokens",
    "logprobs_entry",
    "make_reply",
    "stream_deltas",
    "tool_id_error",
]

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

IMAGE_TOKENS = 85
DOCUMENT_TOKENS = 250
THINKING_WORDS = 8
TOOL_TOKENS = 10
"""Each tool definition: this + the runs of its JSON text."""

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_text_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    return content if isinstance(content, str) else message_text(content)


def _block_tokens(block: Mapping[str, Any]) -> int:
    """A non-text block's tokens (text blocks are counted together, joined)."""
    kind = block.get("type")
    if kind == "tool_call":
        name, arguments = str(block.get("name") or ""), str(block.get("arguments") or "")
        return count_text_tokens(name) + count_text_tokens(arguments)
    if kind == "tool_result":
        inner = block.get("content")
        extra = _blocks_tokens(inner) if isinstance(inner, list) else 0
        return count_text_tokens(_result_text(block)) + extra
    if kind == "thinking":
        return count_text_tokens(str(block.get("text") or ""))
    if kind == "image":
        return IMAGE_TOKENS if ("data" in block or "url" in block) else 0
    if kind == "document":
        return DOCUMENT_TOKENS if ("data" in block or "url" in block or "text" in block) else 0
    return 0


def _blocks_tokens(blocks: list[Any]) -> int:
    return sum(_block_tokens(b) for b in blocks if isinstance(b, Mapping) and b.get("type") != "text")


def count_input_tokens(request: GenerationRequest) -> int:
    total = 3
    if request.system:
        total += 4 + count_text_tokens(request.system)
    for message in request.to_messages():
        content = message["content"]
        if type(content) is str:
            total += 4 + len(_TOKEN_RE.findall(content))
        else:
            total += 4 + count_text_tokens(message_text(content))
            if isinstance(content, list):
                total += _blocks_tokens(content)
    if request.tools:
        for tool in request.tools:
            total += TOOL_TOKENS + count_text_tokens(orjson.dumps(tool).decode())
    return total


@dataclass(slots=True)
class Reply:
    """One answer. ``pieces`` are its text's stream deltas; ``content`` the whole answer as
    neutral blocks when it holds more than text (thinking, tool calls), else None.

    ``choices`` holds OpenAI's choices 1..n-1 (each a Reply of its own, usage of its own);
    then ``usage`` is the total over all choices. ``logprobs`` is OpenAI's choice object.
    (Not frozen: a frozen dataclass's ``__init__`` costs a call per field on the hot path.)"""

    pieces: list[str]
    finish_reason: str
    usage: TokenUsage
    stop_sequence: str | None = None
    content: list[Block] | None = None
    reasoning_tokens: int = 0
    logprobs: dict[str, Any] | None = None
    choices: tuple[Reply, ...] = ()

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def plain(self) -> bool:
        """Text only: served by the writers' text path, byte for byte as before."""
        return self.content is None and self.logprobs is None and not self.choices


def _digest(request: GenerationRequest, model: str, choice: int = 0) -> bytes:
    parts: list[Any] = [model, request.system, request.to_messages()]
    if choice:
        parts.append(choice)
    key = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(key, digest_size=32).digest()


def _words_of(digest: bytes, n: int) -> list[str]:
    return [VOCAB[(digest[i % 32] + 7 * (i // 32)) % 64] for i in range(n)]


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


def _cut_at_stop(words: list[str], stop: list[str] | None, finish: str) -> tuple[list[str], str, str | None]:
    if stop:
        stops = set(stop)
        for i, word in enumerate(words):
            if word in stops:
                return words[:i], "stop_sequence", word
    return words, finish, None


def _usage(input_tokens: int, output: int, behaviour: ModelBehaviour, reasoning: int = 0) -> TokenUsage:
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output,
        total_tokens=input_tokens + output,
        cache_read_tokens=behaviour.cache_read_tokens,
        cache_write_tokens=behaviour.cache_write_tokens,
        reasoning_tokens=reasoning,
    )


def make_reply(
    request: GenerationRequest, model: str, behaviour: ModelBehaviour, api: str = "anthropic"
) -> Reply:
    """The documented reply to ``request`` (see the module docstring); ``api`` picks the
    tool-call id prefix, whether thinking is shown, and OpenAI's ``n`` / ``logprobs``."""
    if request.rich and _beyond_text(request):
        messages = request.to_messages()
        if messages[-1]["role"] != "assistant":
            return _rich_reply(request, model, behaviour, api, messages, input_tokens=(
                count_input_tokens(request) + behaviour.cache_read_tokens + behaviour.cache_write_tokens))
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
        words, finish, stop_sequence = _cut_at_stop(words, request.stop, finish)
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


# ---------------------------------------------------------------- beyond text


def _beyond_text(request: GenerationRequest) -> bool:
    """The request asks for something the text rules do not cover (a ``rich`` request may
    only carry hints, or its API's origin body)."""
    if (
        request.tools or request.response_format is not None or request.reasoning
        or request.logprobs or (request.n is not None and request.n > 1)
    ):
        return True
    messages = request.messages
    return bool(messages) and type(messages[-1]["content"]) is list and request.prompt is None  # type: ignore[index]


def _reasons(request: GenerationRequest) -> bool:
    r = request.reasoning
    if not r:
        return False
    effort = r.get("effort")
    return (effort is not None and effort != "none") or r.get("budget_tokens") is not None or bool(
        r.get("adaptive"))


def _tool_results(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_result"]


def _chosen_tools(
    request: GenerationRequest, tools: Sequence[Mapping[str, Any]], text: str
) -> Sequence[Mapping[str, Any]]:
    choice = request.tool_choice
    if isinstance(choice, Mapping):
        return [t for t in tools if t["name"] == choice.get("name")][:1] or tools[:1]
    named = [
        t for t in tools
        if re.search(r"(?<![\w-])" + re.escape(str(t["name"])) + r"(?![\w-])", text) is not None
    ]
    if not named:
        return tools[:1]
    return named[:1] if request.parallel_tool_calls is False else named


def _split2(text: str) -> list[str]:
    half = len(text) // 2
    return [p for p in (text[:half], text[half:]) if p]


def _spaced(text: str) -> list[str]:
    """``text`` as one piece per space-separated word, each after the first with its space."""
    return [p for p in (w if i == 0 else " " + w for i, w in enumerate(text.split(" "))) if p]


def _thinking(digest: bytes, k: int) -> Block:
    text = " ".join(VOCAB[(digest[j % 32] + 32) % 64] for j in range(k))
    signature = base64.b64encode(hashlib.blake2b(text.encode(), digest_size=32).digest()).decode()
    return {"type": "thinking", "text": text, "signature": signature}


def logprobs_entry(piece: str, k: int) -> dict[str, Any]:
    """OpenAI's log-probability entry for the ``k``-th text piece of a choice."""
    logprob = (k % 8) * -0.0625 + 0.0  # (+ 0.0: 0.0, not -0.0, for the first)
    return {"token": piece, "logprob": logprob, "bytes": list(piece.encode()), "top_logprobs": []}


def _rich_reply(
    request: GenerationRequest, model: str, behaviour: ModelBehaviour, api: str,
    messages: list[Any], input_tokens: int,
) -> Reply:
    n = (request.n or 1) if api == "openai" else 1
    first = _choice(request, model, behaviour, api, messages, input_tokens, _digest(request, model))
    if n == 1:
        return first
    others = tuple(
        _choice(request, model, behaviour, api, messages, input_tokens, _digest(request, model, i))
        for i in range(1, n)
    )
    output = first.usage.output_tokens + sum(c.usage.output_tokens for c in others)
    reasoning = first.reasoning_tokens + sum(c.reasoning_tokens for c in others)
    return replace(first, usage=_usage(input_tokens, output, behaviour, reasoning), choices=others)


def _choice(
    request: GenerationRequest, model: str, behaviour: ModelBehaviour, api: str,
    messages: list[Any], input_tokens: int, digest: bytes,
) -> Reply:
    last = messages[-1]
    results = _tool_results(last)
    thinks = _reasons(request)
    k = min(THINKING_WORDS, request.max_tokens) if thinks else 0
    content: list[Block] = []
    if thinks and api == "anthropic":
        content.append(_thinking(digest, k))
    tools = [t for t in request.tools or () if "type" not in t]
    pieces: list[str] = []
    stop_sequence = None
    if tools and request.tool_choice != "none" and not results:
        prefix = "toolu_sim" if api == "anthropic" else "call_sim"
        head = digest.hex()[:16]
        output = 0
        for i, tool in enumerate(_chosen_tools(request, tools, message_text(last.get("content")))):
            arguments = orjson.dumps(minimal_instance(tool.get("parameters"), digest, VOCAB)).decode()
            name = str(tool["name"])
            content.append({"type": "tool_call", "id": f"{prefix}{head}{i}", "name": name,
                            "arguments": arguments})
            output += count_text_tokens(arguments) + count_text_tokens(name)
        finish = "tool_calls"
    elif request.response_format is not None:
        fmt = request.response_format
        if fmt.get("type") == "json_schema":
            text = orjson.dumps(minimal_instance(fmt.get("schema"), digest, VOCAB)).decode()
        else:
            text = orjson.dumps({"answer": _words_of(digest, 1)[0]}).decode()
        pieces = _split2(text)
        output, finish = count_text_tokens(text), "stop"
    else:
        room = request.max_tokens - k
        finish = "length" if room < behaviour.reply_tokens else "stop"
        words, finish, stop_sequence = _cut_at_stop(
            _words_of(digest, min(room, behaviour.reply_tokens)), request.stop, finish)
        echo = " ".join(f"Tool {b.get('tool_call_id')} said: {_result_text(b)}." for b in results)
        pieces = _spaced(echo) if echo else []
        pieces += [w if i == 0 and not pieces else " " + w for i, w in enumerate(words)]
        output = count_text_tokens(echo) + len(words)
    text = "".join(pieces)
    if content and text:
        content.append({"type": "text", "text": text})
    logprobs = None
    if request.logprobs and api == "openai":
        logprobs = {"content": [logprobs_entry(p, i) for i, p in enumerate(pieces)], "refusal": None}
    return Reply(
        pieces, finish, _usage(input_tokens, output + k, behaviour, k), stop_sequence,
        content or None, k, logprobs,
    )


def stream_deltas(reply: Reply) -> list[list[Delta]]:
    """The stream frames of one choice, each as the neutral deltas a ``StreamWriter.deltas`` call
    renders (see the module docstring)."""
    frames: list[list[Delta]] = []
    blocks = reply.content if reply.content is not None else ([{"type": "text"}] if reply.pieces else [])
    entries = reply.logprobs["content"] if reply.logprobs is not None else None
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "thinking":
            frames.extend([Delta("thinking", index, text=p)] for p in _spaced(block["text"]))
            frames.append([Delta("signature", index, text=block.get("signature", ""))])
        elif kind == "tool_call":
            frames.append([Delta("tool_call", index, id=block["id"], name=block["name"])])
            frames.extend([Delta("tool_arguments", index, text=p)] for p in _split2(block["arguments"]))
        elif kind == "text":
            for k, piece in enumerate(reply.pieces):
                frame = [Delta("text", index, text=piece)]
                if entries is not None:
                    frame.append(Delta("logprobs", index, value={"content": [entries[k]], "refusal": None}))
                frames.append(frame)
    return frames


# ---------------------------------------------------------------- tool ids, as the APIs check them


def tool_id_error(api: str, body: Any) -> tuple[str, str | None] | None:
    """The 400 the real API answers to tool calls and results that do not pair up, as
    ``(message, param)``; None when they do. ``body`` is the request as sent."""
    messages = body.get("messages") if isinstance(body, Mapping) else None
    if not isinstance(messages, Sequence):
        return None
    if api == "anthropic":
        return _anthropic_tool_ids(messages)
    return _openai_tool_ids(messages)


def _blocks(message: Any, kind: str) -> list[tuple[int, Mapping[str, Any]]]:
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        return []
    return [(j, b) for j, b in enumerate(content) if isinstance(b, Mapping) and b.get("type") == kind]


def _anthropic_tool_ids(messages: Sequence[Any]) -> tuple[str, str | None] | None:
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "assistant":
            calls = [str(b.get("id")) for _, b in _blocks(message, "tool_use")]
            if calls and i + 1 < len(messages):
                following = messages[i + 1]
                answered = (
                    {str(b.get("tool_use_id")) for _, b in _blocks(following, "tool_result")}
                    if isinstance(following, Mapping) and following.get("role") == "user" else set()
                )
                missing = [c for c in calls if c not in answered]
                if missing:
                    return (
                        f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.", None)
        else:
            previous = messages[i - 1] if i > 0 else None
            known = (
                {str(b.get("id")) for _, b in _blocks(previous, "tool_use")}
                if isinstance(previous, Mapping) and previous.get("role") == "assistant" else set()
            )
            for j, block in _blocks(message, "tool_result"):
                if str(block.get("tool_use_id")) not in known:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.", None)
    return None


def _call_ids(message: Any) -> list[str] | None:
    """An OpenAI assistant message's tool_call ids; None when it is not one with tool_calls."""
    if not isinstance(message, Mapping) or message.get("role") != "assistant":
        return None
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        return None
    return [str(c.get("id")) for c in calls if isinstance(c, Mapping)]


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, Mapping) else None


def _openai_tool_ids(messages: Sequence[Any]) -> tuple[str, str | None] | None:
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        calls = _call_ids(message)
        if calls is not None and i + 1 < len(messages):
            end = i + 1
            answered: set[str] = set()
            while end < len(messages) and _role(messages[end]) == "tool":
                answered.add(str(messages[end].get("tool_call_id")))
                end += 1
            missing = [c for c in calls if c not in answered]
            if missing:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(missing)}", f"messages.[{end if end < len(messages) else i}].role")
        if message.get("role") == "tool":
            p = i - 1
            while p >= 0 and _role(messages[p]) == "tool":
                p -= 1
            owner = _call_ids(messages[p]) if p >= 0 else None
            if owner is None:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.", f"messages.[{i}].role")
            call_id = message.get("tool_call_id")
            if str(call_id) not in owner:
                return (
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                    "previous message.", f"messages.[{i}].tool_call_id")
    return None
