"""The OpenAI Chat Completions API on the wire, both sides of it, in one module.

The providers speak the client side, the simulator and the gateway the server
side; keeping them together keeps each mapping beside its inverse (``TO_NEUTRAL``
/ ``FROM_NEUTRAL``, ``usage_from_wire`` / ``usage_to_wire``), so a change to the
API's shape is made, and tested, in one place.

Client side (providers)::

    build_request(request, model, *, stream) -> dict        # what the official SDK sends
    fit(request) -> Fit                                      # what this API drops / refuses of it
    parse_response(body, request=None) -> ParsedResponse    # text, content blocks, neutral finish, usage
    StreamParser(provider=None, request=None).feed(event)    # str (text) | list[Delta] | None
                               .finish() -> ParsedResponse   # or StreamInterruptedError

Server side (simulator, gateway)::

    parse_request(body) -> (GenerationRequest, RequestOptions)   # RequestFieldError(.param, .code)
    render_response(id=, model=, text=, finish_reason=, usage=, created=, content=, ...) -> dict
    StreamWriter(id, model, created, include_usage).start() / .delta(t) / .deltas(ds) / .finish(r, u)
    error_body(status, message, type=None, code=None, param=None) -> dict;  ERROR_TYPES
    usage_to_wire(usage) / usage_from_wire(dict);  TO_NEUTRAL / FROM_NEUTRAL finish maps
    HINT_FIELDS / MEANING_FIELDS                                  # for the other API's fit()

Beyond text (docs/fields.md is the contract): a request parsed here keeps the caller's body
in ``request.origin``, which an OpenAI provider sends as it came (only ``model`` and the
stream flags rewritten, so fields this module does not know still reach the upstream); any
other request is translated field by field, and ``fit`` says beforehand what an OpenAI
provider must drop (hints such as ``top_k``) or cannot express (a document by URL, an
Anthropic server tool). A plain-text body skips the field table and is not ``rich``: the text
path pays for none of this beyond keeping the body.

Why the care (see tests/wire/fixtures/README.md): ``prompt_tokens``
*includes* ``cached_tokens`` like ours (rule 10); only ``max_completion_tokens``
is sent, since both fields together are a 400 (rule 12); usage arrives in a
stream only with ``include_usage``, in a chunk whose ``choices`` is empty
(rule 13); an ``error`` payload inside a 200 stream is a failure even if
``[DONE]`` follows, and a stream without a ``finish_reason`` is incomplete
(rule 15).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import orjson

from .._errors import InvalidRequestError, StreamInterruptedError, UnsupportedParamsError
from .._types import GenerationRequest, Message, TokenUsage
from ..content import REASONING_EFFORTS, Block, Delta, WireOrigin
from ._common import (
    FITS,
    Fit,
    ParsedResponse,
    RequestFieldError,
    RequestOptions,
    check_content,
    count,
    counted_usage,
    message_text,
    optional_bool,
    optional_temperature,
    positive_int,
    require_model,
    require_object,
    stop_list,
)
from .field_table import ANTHROPIC_HINTS, OPENAI_HINTS, OPENAI_MEANING
from .sse import ServerSentEvent

__all__ = [
    "DONE",
    "ERROR_TYPES",
    "FROM_NEUTRAL",
    "HINT_FIELDS",
    "MEANING_FIELDS",
    "TO_NEUTRAL",
    "ParsedResponse",
    "RequestFieldError",
    "RequestOptions",
    "StreamParser",
    "StreamWriter",
    "build_request",
    "error_body",
    "fit",
    "parse_request",
    "parse_response",
    "render_models",
    "render_response",
    "render_stream",
    "usage_from_wire",
    "usage_to_wire",
]


# ---------------------------------------------------------------- vocabulary

API = "openai"

DONE = b"data: [DONE]\n\n"

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}
"""HTTP status → ``error.type`` as api.openai.com uses it (429 is ``requests`` or ``tokens``)."""

_DEFAULT_CODES: dict[int, str] = {401: "invalid_api_key", 429: "rate_limit_exceeded"}

FROM_NEUTRAL: dict[str, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "pause": "stop",
}

TO_NEUTRAL: dict[str, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
"""OpenAI ``finish_reason`` → neutral. Anything else (``error``, ``abort``) is not a finish."""

HINT_FIELDS = OPENAI_HINTS
"""OpenAI request fields that are hints (``field_table``): a provider of another API drops them
(``x-greenlang-dropped-params``) instead of refusing the request. The non-neutral ones among them
(``store``, ``metadata``, ...) are in ``GenerationRequest.origin.unknown`` like every other field
no neutral field covers; another API's ``fit`` looks names up here before refusing them."""

MEANING_FIELDS = OPENAI_MEANING
"""OpenAI request fields known to carry meaning that no neutral field covers (``field_table``)."""

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_INPUT_ROLES = {**_ROLES, "tool": "tool"}
_PLAIN_ROLES = frozenset({"system", "user", "assistant"})
_REQUEST_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "stop",
        "stream",
        "stream_options",
    }
)
"""The fields of a plain-text request: a body with no others skips the field table."""
_PLAIN_STREAM_OPTIONS = frozenset({"include_usage"})

_OPENAI_TOOL_TYPES = frozenset({"function", "custom"})
"""Tool kinds Chat Completions knows (a library user may pass them as the API spells them)."""
_OPENAI_USER_PARTS = frozenset({"input_audio", "file"})
"""OpenAI user content parts with no neutral block (audio, an uploaded ``file_id``; an assistant's
``refusal`` part likewise): forwarded as they are from a library request, refused from another
API's caller."""
_THINKING = frozenset({"thinking", "redacted_thinking"})
_NEUTRAL_DELTA_KEYS = frozenset(
    {"role", "content", "refusal", "tool_calls", "reasoning_content", "reasoning", "function_call"})
"""The keys of a stream chunk's ``delta`` the neutral stream carries; others are relayed verbatim
to a caller of this API (``Delta("fields")``)."""
_MAX_STOP = 4


# ---------------------------------------------------------------- usage


def usage_from_wire(raw: Mapping[str, Any] | None) -> TokenUsage:
    """OpenAI usage → ours; ``cached_tokens`` (and 3.x ``cache_write_tokens``) are subsets (rule 10),
    ``completion_tokens_details.reasoning_tokens`` a part of the completion tokens."""
    raw = raw or {}
    # inline checks for what orjson gives (``type(x) is int`` also keeps bools out), ``count``
    # for anything else: this runs once per reply
    prompt = raw.get("prompt_tokens")
    if type(prompt) is not int or prompt < 0:
        prompt = count(prompt)
    output = raw.get("completion_tokens")
    if type(output) is not int or output < 0:
        output = count(output)
    details = raw.get("prompt_tokens_details")
    read = write = 0
    if type(details) is dict or (details is not None and isinstance(details, Mapping)):
        read = min(count(details.get("cached_tokens")), prompt)
        written = details.get("cache_write_tokens")
        write = min(count(written), prompt - read) if written is not None else 0
    done = raw.get("completion_tokens_details")
    reasoning = 0
    if type(done) is dict or (done is not None and isinstance(done, Mapping)):
        thought = done.get("reasoning_tokens")
        reasoning = thought if type(thought) is int and thought >= 0 else count(thought)
    return counted_usage(prompt, output, read, write, reasoning)


def usage_to_wire(u: TokenUsage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0}
    if u.cache_write_tokens:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# ---------------------------------------------------------------- client side: requests


def build_request(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body the official SDK would send: system first, ``max_completion_tokens`` only.

    A request that came in the OpenAI API is sent as it came (see :func:`_pass_through`);
    any other request beyond text is translated (:func:`_translate`), and raises
    ``UnsupportedParamsError`` for what :func:`fit` refuses.
    """
    origin = request.origin
    if origin is not None and origin.api == API:
        return _pass_through(origin.body, model, stream, request.extra, request.max_tokens)
    if request.rich:
        return _translate(request, model, stream)
    messages: list[Message] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": m["role"], "content": m["content"]} for m in request.to_messages())
    body: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": request.max_tokens}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop"] = list(request.stop)
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _pass_through(
    body: Mapping[str, Any], model: str, stream: bool, extra: Mapping[str, Any] | None, max_tokens: int
) -> dict[str, Any]:
    """The caller's own body, every field kept: only ``model`` and the stream flags are ours
    (a stream always asks for the usage chunk: the ledger needs it), and an output limit when the
    caller set none: without one the upstream may write up to the model's maximum, past what a
    hard budget reserved for the request (``max_tokens``, the library default 1024)."""
    out = dict(body)
    out["model"] = model
    if out.get("max_completion_tokens") is None and out.get("max_tokens") is None:
        out["max_completion_tokens"] = max_tokens
    if stream:
        out["stream"] = True
        options = out.get("stream_options")
        out["stream_options"] = (
            {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
        )
    else:
        out["stream"] = False
        out.pop("stream_options", None)
    if extra:
        out.update(extra)
    return out


def fit(request: GenerationRequest) -> Fit:
    """What an OpenAI provider does with a request beyond text (docs/fields.md).

    A plain-text request, and one that came in this API (sent as it came), fit as they are.
    Otherwise: ``top_k``, ``cache_control`` markers, earlier turns' thinking blocks, an
    Anthropic caller's ``service_tier`` / ``inference_geo`` and a thinking ``display`` are
    dropped; a document by URL or as text, an image inside a tool result, a tool or block of
    another API, more than 4 stop sequences and every field of another API's caller that no
    neutral field covers are refused. Names are the caller's (an Anthropic caller's
    ``stop_sequences``, ``thinking.display``), neutral ones for a library request.
    """
    if not request.rich:
        return FITS
    origin = request.origin
    if origin is not None and origin.api == API:
        return FITS
    anthropic = origin is not None and origin.api == "anthropic"
    foreign = origin is not None  # a caller of another API: its own kinds are not ours
    dropped: list[str] = []
    refused: list[str] = []
    if request.top_k is not None:
        dropped.append("top_k")
    if anthropic and request.service_tier is not None:
        dropped.append("service_tier")
    reasoning = request.reasoning
    if reasoning is not None and reasoning.get("display") is not None:
        dropped.append("thinking.display" if anthropic else "reasoning.display")
    if request.stop and len(request.stop) > _MAX_STOP:
        refused.append("stop_sequences" if anthropic else "stop")
    for i, tool in enumerate(request.tools or ()):
        kind = tool.get("type")
        if kind is not None and (foreign or kind not in _OPENAI_TOOL_TYPES):
            refused.append(f"tools[{i}]: {kind}")
        elif "cache_control" in tool:
            dropped.append("cache_control")
    _fit_messages(request, foreign, dropped, refused)
    if origin is not None:
        hints: frozenset[str] = frozenset()
        if anthropic:
            hints = ANTHROPIC_HINTS
            system = origin.body.get("system")
            if isinstance(system, list) and any(
                isinstance(b, Mapping) and "cache_control" in b for b in system
            ):
                dropped.append("cache_control")
            for name in ("service_tier", "inference_geo"):  # whether or not they are in ``unknown``
                if origin.body.get(name) is not None:
                    dropped.append(name)
        for name in origin.unknown:
            (dropped if name in hints else refused).append(name)
    if not dropped and not refused:
        return FITS
    return Fit.of(request, list(dict.fromkeys(dropped)), list(dict.fromkeys(refused)))


def _fit_messages(request: GenerationRequest, foreign: bool, dropped: list[str], refused: list[str]) -> None:
    """The messages' blocks an OpenAI provider cannot send as they are (see :func:`fit`; names may
    repeat here, ``fit`` keeps the first of each)."""
    for i, message in enumerate(request.to_messages()):
        content = message.get("content")
        if type(content) is str or not isinstance(content, list):
            continue
        role = message.get("role")
        for j, block in enumerate(content):
            kind = block.get("type")
            if "cache_control" in block:
                dropped.append("cache_control")
            if kind == "text":
                continue
            if kind in _THINKING:
                dropped.append("thinking")
                continue
            where = f"messages[{i}].content[{j}]"
            if role == "assistant":
                if kind == "tool_call" or (kind == "refusal" and not foreign):
                    continue
            elif role == "user" and "source" not in block:  # (a source: Anthropic's own file)
                if kind == "image":
                    continue
                if kind == "document" and block.get("data") is not None:
                    dropped.extend(f"document.{k}" for k in ("context", "citations") if block.get(k))
                    continue
                if kind == "tool_result":
                    _fit_tool_result(block, where, dropped, refused)
                    continue
                if kind in _OPENAI_USER_PARTS and not foreign:
                    continue
            refused.append(f"{where}: {kind}")


def _fit_tool_result(block: Block, where: str, dropped: list[str], refused: list[str]) -> None:
    inner = block.get("content")
    if not isinstance(inner, list):
        return
    for k, part in enumerate(inner):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if isinstance(part, Mapping) and "cache_control" in part:
            dropped.append("cache_control")
        if kind != "text":
            refused.append(f"{where}.content[{k}]: {kind}")


def _translate(request: GenerationRequest, model: str, stream: bool) -> dict[str, Any]:
    """A request of another API, or a library's, written in this one (docs/fields.md)."""
    fitted = fit(request)
    if fitted.refused:
        raise UnsupportedParamsError(
            "the OpenAI Chat Completions API cannot serve: " + ", ".join(fitted.refused),
            fields=fitted.refused,
        )
    origin = request.origin
    anthropic = origin is not None and origin.api == "anthropic"
    messages: list[Message] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.to_messages():
        _message_to_wire(message, messages)
    body: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": request.max_tokens}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    for name in ("n", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
                 "top_logprobs", "user"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.service_tier is not None and not anthropic:
        body["service_tier"] = request.service_tier
    tools = request.tools
    if tools:
        body["tools"] = [_tool_to_wire(t) for t in tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice_to_wire(request.tool_choice, tools)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = _format_to_wire(fmt, anthropic)
    if request.reasoning is not None:
        effort = _effort(request.reasoning)
        if effort is not None:
            body["reasoning_effort"] = effort
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.extra:
        body.update(request.extra)
    return body


def _without_cache(block: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _message_to_wire(message: Mapping[str, Any], out: list[Message]) -> None:
    """One neutral message as OpenAI messages: a user turn's tool results become ``tool``
    messages (in order, before the rest of the turn), an assistant's tool calls its
    ``tool_calls``; thinking blocks are left out (they have no field in a request)."""
    role = message.get("role")
    content = message.get("content")
    if type(content) is str or not isinstance(content, list):
        out.append({"role": role, "content": content})
        return
    if role == "assistant":
        out.append(_assistant_to_wire(content))
        return
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "tool_result":
            out.append(_tool_message(block))
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "document":
            parts.append(_file_part(block))
        elif kind in _THINKING:
            continue
        else:
            parts.append(_without_cache(block))
    if parts:
        out.append({"role": role, "content": parts})


def _assistant_to_wire(content: list[Block]) -> Message:
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    only_text = True
    for block in content:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            texts.append(text)
            parts.append({"type": "text", "text": text})
        elif kind == "tool_call":
            calls.append({
                "id": block.get("id") or "",
                "type": "function",
                "function": {"name": block.get("name") or "", "arguments": block.get("arguments") or "{}"},
            })
        elif kind in _THINKING:
            continue
        else:
            only_text = False
            parts.append(_without_cache(block))
    message: Message = {"role": "assistant"}
    if not only_text:
        message["content"] = parts
    elif texts:
        message["content"] = "".join(texts)
    else:
        message["content"] = None if calls else ""
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_message(block: Block) -> Message:
    content = block.get("content")
    text = content if isinstance(content, str) else message_text(content)
    if block.get("is_error"):
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": block.get("tool_call_id") or "", "content": text}


def _image_part(block: Block) -> dict[str, Any]:
    url = block.get("url")
    if not url:
        url = f"data:{block.get('media_type') or 'image/png'};base64,{block.get('data') or ''}"
    image: dict[str, Any] = {"url": url}
    if block.get("detail") is not None:
        image["detail"] = block["detail"]
    return {"type": "image_url", "image_url": image}


def _file_part(block: Block) -> dict[str, Any]:
    media = block.get("media_type") or "application/pdf"
    name = block.get("title") or "document"
    if media == "application/pdf" and not name.lower().endswith(".pdf"):
        name += ".pdf"
    data = f"data:{media};base64,{block.get('data') or ''}"
    return {"type": "file", "file": {"filename": name, "file_data": data}}


def _tool_to_wire(tool: Mapping[str, Any]) -> dict[str, Any]:
    kind = tool.get("type")
    if kind is not None:  # the API's own tool, as its caller wrote it (``name`` is ours: see _tools_in)
        return {k: v for k, v in tool.items() if k != "cache_control" and (k != "name" or kind not in tool)}
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice_to_wire(choice: Any, tools: Sequence[Mapping[str, Any]]) -> Any:
    if isinstance(choice, str):
        return choice
    name = choice.get("name")
    for tool in tools:
        if tool.get("name") == name and tool.get("type") == "custom":
            return {"type": "custom", "custom": {"name": name}}
    return {"type": "function", "function": {"name": name}}


def _format_to_wire(fmt: Mapping[str, Any], anthropic: bool) -> dict[str, Any]:
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": fmt.get("name") or "response"}
    if fmt.get("description") is not None:
        schema["description"] = fmt["description"]
    schema["schema"] = fmt.get("schema") or {}
    strict = fmt.get("strict")
    if strict is None and anthropic:
        strict = True  # Anthropic's structured outputs always follow the schema
    if strict is not None:
        schema["strict"] = strict
    return {"type": "json_schema", "json_schema": schema}


def _effort(reasoning: Mapping[str, Any]) -> str | None:
    """Neutral reasoning → ``reasoning_effort``: an effort as it is (``max`` → ``xhigh``), a thinking
    budget by size (≤ 1024 low, ≤ 2048 medium, else high: docs/fields.md, the inverse of
    Anthropic's effort budgets), adaptive thinking
    ``medium``."""
    effort = reasoning.get("effort")
    if effort is not None:
        return "xhigh" if effort == "max" else str(effort)
    budget = reasoning.get("budget_tokens")
    if budget is not None:
        return "low" if budget <= 1024 else "medium" if budget <= 2048 else "high"
    if reasoning.get("adaptive"):
        return "medium"
    return None


# ---------------------------------------------------------------- client side: replies


def _first_choice(body: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = body.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            # ``type(x) is dict`` first: what orjson gives, without the ABC check (hot path)
            if (type(choice) is dict or isinstance(choice, Mapping)) and choice.get("index", 0) == 0:
                return choice
    return {}


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else orjson.dumps(value).decode()


def _calls_from_wire(calls: Any) -> list[Block]:
    """A message's ``tool_calls`` as neutral ``tool_call`` blocks (a custom tool's ``input`` as
    its arguments)."""
    out: list[Block] = []
    if not isinstance(calls, list):
        return out
    for call in calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if not isinstance(function, Mapping):
            custom = call.get("custom")
            function = {"name": custom.get("name"), "arguments": custom.get("input")} if isinstance(
                custom, Mapping) else {}
        out.append({
            "type": "tool_call",
            "id": str(call.get("id") or ""),
            "name": str(function.get("name") or ""),
            "arguments": _arguments(function.get("arguments")),
        })
    return out


def _answer(thinking: str, text: str, calls: list[Block]) -> list[Block]:
    """The answer's content in the order both the plain and the streamed parse give it."""
    blocks: list[Block] = []
    if thinking:
        blocks.append({"type": "thinking", "text": thinking})
    if text:
        blocks.append({"type": "text", "text": text})
    blocks.extend(calls)
    return blocks


def _reasoning_text(message: Mapping[str, Any]) -> str:
    """The thinking an OpenAI-compatible server returns (``reasoning_content``; some say ``reasoning``)."""
    value = message.get("reasoning_content")
    if type(value) is str and value:
        return value
    value = message.get("reasoning")
    return value if type(value) is str else ""


def _same_api(request: GenerationRequest | None) -> bool:
    """The request came in this API: its caller gets the reply's own words (finish reason,
    stream metadata) rather than their neutral reading."""
    origin = request.origin if request is not None else None
    return origin is not None and origin.api == API


def parse_response(body: Mapping[str, Any], request: GenerationRequest | None = None) -> ParsedResponse:
    """A plain ``POST /chat/completions`` reply (first choice; ``choices`` may be empty).

    ``content`` is None for a text-only answer; otherwise thinking (``reasoning_content``),
    text and tool calls, in that order. A refusal finishing with ``stop`` is the neutral
    ``content_filter`` (what another API calls a refusal), except for a ``request`` that came
    in this API, whose caller gets the ``stop`` the upstream sent.
    """
    choice = _first_choice(body)
    message = choice.get("message")
    text = ""
    content: list[Block] | None = None
    refusal: str | None = None
    if type(message) is dict or isinstance(message, Mapping):
        said = message.get("content")
        text = said if type(said) is str else message_text(said)
        calls = message.get("tool_calls")
        if calls or "reasoning_content" in message or "reasoning" in message:
            thinking = _reasoning_text(message)
            blocks = _calls_from_wire(calls)
            if thinking or blocks:
                content = _answer(thinking, text, blocks)
        said = message.get("refusal")
        if said and type(said) is str:
            refusal = said
    reason = choice.get("finish_reason")
    if type(reason) is not str:
        reason = None
    finish = None if reason is None else TO_NEUTRAL.get(reason, reason)
    if refusal is not None and finish == "stop" and not _same_api(request):
        finish = "content_filter"
    raw_usage = body.get("usage")
    return ParsedResponse(
        text=text,
        finish_reason=finish,
        usage=usage_from_wire(raw_usage)
        if type(raw_usage) is dict or isinstance(raw_usage, Mapping)
        else None,
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        native_finish_reason=reason,
        content=content,
        refusal=refusal,
        logprobs=choice.get("logprobs"),
    )


class StreamParser:
    """Accumulates one OpenAI-style SSE stream; ``feed`` returns what each event carries.

    A chunk of text alone gives that text (``str``, the hot path); a chunk carrying anything
    else (reasoning, a tool call opening or its arguments, a refusal, log-probabilities, and
    for a ``request`` that came in this API the stream's ``system_fingerprint`` /
    ``service_tier`` once, as a ``meta`` delta) gives a ``list[Delta]`` with its text among
    them; a chunk of nothing gives None. Neutral indexes are given in order of
    appearance: the text, the reasoning and each ``tool_calls[k].index`` get one each.

    ``finish()`` raises ``StreamInterruptedError`` (with the text so far) when no
    ``finish_reason`` came, when it is non-standard (``error``, ``abort``), or —
    with ``require_done`` (default) — when ``data: [DONE]`` never came. An
    ``{"error": ...}`` payload or invalid JSON raises from ``feed`` at once. Its
    ``content`` is what :func:`parse_response` gives for the same answer.
    """

    __slots__ = (
        "_calls",
        "_held",
        "_logprobs",
        "_meta",
        "_next",
        "_parts",
        "_refusal",
        "_same_api",
        "_text_index",
        "_thinking",
        "_thinking_index",
        "_usage",
        "done",
        "id",
        "model",
        "native_finish_reason",
        "provider",
        "require_done",
    )

    def __init__(
        self,
        provider: str | None = None,
        *,
        require_done: bool = True,
        request: GenerationRequest | None = None,
    ) -> None:
        self.provider = provider
        self.require_done = require_done
        self._parts: list[str] = []
        self._usage: Mapping[str, Any] | None = None
        self.id = ""
        self.model = ""
        self.native_finish_reason: str | None = None
        self.done = False
        self._same_api = _same_api(request)
        self._meta = not self._same_api
        """True once the meta delta was found, or when none is wanted: the stream's
        ``system_fingerprint`` / ``service_tier`` reach only a caller of this same API."""
        self._held: Delta | None = None
        """The meta delta, found and not yet given: it travels with the first content (a chunk
        of meta alone would count as the answer's first byte)."""
        self._next = 0
        self._text_index = -1
        self._thinking_index = -1
        self._thinking: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        """``tool_calls[k].index`` → [neutral index, id, name, argument pieces]."""
        self._logprobs: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def finish_reason(self) -> str | None:
        reason = self.native_finish_reason
        return None if reason is None else TO_NEUTRAL.get(reason)

    @property
    def usage(self) -> TokenUsage | None:
        return None if self._usage is None else usage_from_wire(self._usage)

    def _interrupted(self, message: str, retryable: bool = True, status: int | None = None) -> NoReturn:
        raise StreamInterruptedError(
            message, retryable=retryable, provider=self.provider, status_code=status, partial_text=self.text
        )

    def _text_block(self) -> int:
        index = self._text_index
        if index < 0:
            index = self._text_index = self._next
            self._next += 1
        return index

    def feed(self, event: ServerSentEvent) -> str | list[Delta] | None:
        if self.done:
            return None
        raw = event.data
        if raw[:1] != "{" and raw.strip() == "[DONE]":  # (a chunk is an object: no strip per chunk)
            self.done = True
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._interrupted("invalid JSON in stream chunk")
        if type(data) is not dict:
            self._interrupted("stream chunk is not a JSON object")
        if data.get("error"):
            err = data["error"] if isinstance(data["error"], Mapping) else {"message": str(data["error"])}
            code = err.get("code")
            status = code if isinstance(code, int) and not isinstance(code, bool) else None
            self._interrupted(
                f"stream error {err.get('type') or code or ''}: {err.get('message') or ''}",
                retryable=status is None or status >= 500 or status == 429,
                status=status,
            )
        if not self.id:
            self.id = str(data.get("id") or "")
            self.model = str(data.get("model") or "")
        usage = data.get("usage")
        if usage is not None and (type(usage) is dict or isinstance(usage, Mapping)):
            self._usage = usage
        if not self._meta:
            self._held = self._meta_delta(data)
        meta = self._held
        choices = data.get("choices")
        choice = choices[0] if type(choices) is list and choices else None
        if type(choice) is not dict or choice.get("index", 0) != 0:
            choice = _first_choice(data)
            if not choice:
                return None  # the usage chunk, or a chunk for another choice
        if choice.get("finish_reason"):
            self.native_finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = {}
        content = delta.get("content")
        if (
            type(content) is str and content and len(delta) == 1 and meta is None
            and choice.get("logprobs") is None
        ):
            if self._text_index < 0:
                self._text_block()
            self._parts.append(content)
            return content
        return self._feed_rich(choice, delta, meta)

    def _meta_delta(self, data: Mapping[str, Any]) -> Delta | None:
        fingerprint = data.get("system_fingerprint")
        tier = data.get("service_tier")
        if fingerprint is None and tier is None:
            return None
        self._meta = True
        return Delta("meta", 0, value={"system_fingerprint": fingerprint, "service_tier": tier})

    def _feed_rich(
        self, choice: Mapping[str, Any], delta: Mapping[str, Any], meta: Delta | None
    ) -> str | list[Delta] | None:
        out: list[Delta] = []
        thinking = _reasoning_text(delta) if "reasoning_content" in delta or "reasoning" in delta else ""
        if thinking:
            if self._thinking_index < 0:
                self._thinking_index = self._next
                self._next += 1
            self._thinking.append(thinking)
            out.append(Delta("thinking", self._thinking_index, thinking))
        content = delta.get("content")
        if type(content) is str and content:
            self._parts.append(content)
            out.append(Delta("text", self._text_block(), content))
        refusal = delta.get("refusal")
        if type(refusal) is str and refusal:
            self._refusal.append(refusal)
            out.append(Delta("refusal", self._text_block(), refusal))
        calls = delta.get("tool_calls")
        if calls and type(calls) is list:
            self._feed_calls(calls, out)
        if self._same_api and not _NEUTRAL_DELTA_KEYS.issuperset(delta):
            # a field the neutral stream has no shape for (audio, annotations...): relayed as it
            # came to a caller of this API, the only one that can read it
            other = {k: v for k, v in delta.items() if k not in _NEUTRAL_DELTA_KEYS}
            out.append(Delta("fields", self._text_block(), value=other))
        logprobs = choice.get("logprobs")
        if type(logprobs) is dict:
            self._add_logprobs(logprobs)
            if any(logprobs.values()):
                out.append(Delta("logprobs", self._text_block(), value=logprobs))
        if not out:
            return None
        if meta is not None:  # with the first content, never alone: it is not content itself
            self._held = None
            out.insert(0, meta)
        elif len(out) == 1 and out[0].kind == "text":
            return out[0].text
        return out

    def _feed_calls(self, calls: list[Any], out: list[Delta]) -> None:
        for position, call in enumerate(calls):
            if type(call) is not dict:
                continue
            k = call.get("index")
            if type(k) is not int:
                k = position
            function = call.get("function")
            if type(function) is not dict:
                custom = call.get("custom")
                function = {"name": custom.get("name"), "arguments": custom.get("input")} if type(
                    custom) is dict else {}
            name = function.get("name")
            state = self._calls.get(k)
            if state is None:
                state = [self._next, str(call.get("id") or ""), str(name or ""), []]
                self._next += 1
                self._calls[k] = state
                out.append(Delta("tool_call", state[0], id=state[1], name=state[2]))
            else:
                if not state[1] and call.get("id"):
                    state[1] = str(call["id"])
                if not state[2] and name:
                    state[2] = str(name)
            arguments = function.get("arguments")
            if type(arguments) is str and arguments:
                state[3].append(arguments)
                out.append(Delta("tool_arguments", state[0], arguments))

    def _add_logprobs(self, logprobs: Mapping[str, Any]) -> None:
        """Joins the chunks' ``logprobs`` into the plain reply's shape (token lists concatenated)."""
        total = self._logprobs
        if total is None:
            total = self._logprobs = {}
        for key, value in logprobs.items():
            if isinstance(value, list):
                seen = total.get(key)
                total[key] = value if seen is None else [*seen, *value]
            elif key not in total:
                total[key] = value

    def finish(self) -> ParsedResponse:
        """Call when the byte stream ended; raises if it is incomplete (see the class docstring)."""
        reason = self.native_finish_reason
        if reason is None:
            self._interrupted("stream ended without a finish_reason")
        if reason not in TO_NEUTRAL:
            self._interrupted(f"stream finished with {reason!r}")
        if self.require_done and not self.done:
            self._interrupted("stream ended before data: [DONE]")
        content: list[Block] | None = None
        if self._thinking or self._calls:
            calls: list[Block] = [
                {"type": "tool_call", "id": s[1], "name": s[2], "arguments": "".join(s[3])}
                for _, s in sorted(self._calls.items())
            ]
            content = _answer("".join(self._thinking), self.text, calls)
        refusal = "".join(self._refusal) or None
        finish = self.finish_reason
        if refusal is not None and finish == "stop" and not self._same_api:
            finish = "content_filter"
        return ParsedResponse(
            text=self.text,
            finish_reason=finish,
            usage=self.usage,
            id=self.id,
            model=self.model,
            native_finish_reason=reason,
            content=content,
            refusal=refusal,
            logprobs=self._logprobs,
        )


# ---------------------------------------------------------------- server side: requests


def _check_parts(i: int, role: str, content: Any) -> None:
    """A user or system message's content: a string or a non-empty list of typed parts, the
    known ones well formed (an unknown part type is kept, as the API's own block)."""
    check_content(f"messages[{i}]", content)
    if isinstance(content, str):
        return
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = part["type"]
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RequestFieldError(f"{where}.text: must be a string", "messages")
        elif role == "system":
            raise RequestFieldError(
                f"{where}: a system message holds text parts only, got {kind!r}", "messages")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else None
            if not isinstance(url, str) or not url:
                raise RequestFieldError(f"{where}.image_url.url: required (a URL or a data URI)", "messages")
        elif kind == "input_audio":
            audio = part.get("input_audio")
            if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
                raise RequestFieldError(f"{where}.input_audio.data: required (base64 audio)", "messages")
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, Mapping) or not (
                isinstance(file.get("file_data"), str) or isinstance(file.get("file_id"), str)
            ):
                raise RequestFieldError(f"{where}.file: needs file_data or file_id", "messages")


def _tool_calls_in(i: int, calls: Any) -> list[dict[str, Any]]:
    """An assistant's ``tool_calls``, checked; a custom tool's call as a function call whose
    arguments are its ``input`` (the neutral model has one kind of call)."""
    if not isinstance(calls, list):
        raise RequestFieldError(f"messages[{i}].tool_calls: must be a list", "messages")
    out: list[dict[str, Any]] = []
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, Mapping):
            raise RequestFieldError(f"{where}: must be an object", "messages")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise RequestFieldError(f"{where}.id: required (a non-empty string)", "messages")
        kind = call.get("type", "function")
        payload = call.get(kind) if isinstance(kind, str) and kind in _OPENAI_TOOL_TYPES else None
        name = payload.get("name") if isinstance(payload, Mapping) else None
        if not isinstance(payload, Mapping) or not isinstance(name, str) or not name:
            raise RequestFieldError(f"{where}: must be a function (or custom) call with a name", "messages")
        arguments = payload.get("arguments" if kind == "function" else "input")
        if not isinstance(arguments, str):
            raise RequestFieldError(f"{where}: the arguments must be a string of JSON", "messages")
        out.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
    return out


def _assistant_in(i: int, message: Mapping[str, Any]) -> Message:
    content = message.get("content")
    calls = _tool_calls_in(i, message["tool_calls"]) if message.get("tool_calls") is not None else []
    if content is None or content == "" or content == []:
        if not calls and message.get("function_call") is None and message.get("audio") is None:
            raise RequestFieldError(
                f"messages[{i}].content: required unless the message has tool_calls", "messages")
        content = None if calls else ""
    else:
        check_content(f"messages[{i}]", content)
    own = [{"type": f"assistant_{key}", key: message[key]}
           for key in ("audio", "function_call") if message.get(key) is not None]
    if own:  # this API's own parts of an assistant turn: kept, so another API refuses them by name
        text = [{"type": "text", "text": content}] if isinstance(content, str) and content else []
        content = [*(content if isinstance(content, list) else text), *own]
    out: Message = {"role": "assistant", "content": content}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_message_in(i: int, message: Mapping[str, Any]) -> Message:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise RequestFieldError(f"messages[{i}].tool_call_id: required for a tool message", "messages")
    content = message.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(
                    part.get("text"), str):
                raise RequestFieldError(
                    f"messages[{i}].content[{j}]: a tool message holds text parts", "messages")
    elif not isinstance(content, str):
        raise RequestFieldError(
            f"messages[{i}].content: must be a string or a list of text parts", "messages")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _parse_messages(value: Any) -> tuple[str | None, list[Message], bool]:
    """Leading system/developer messages become ``system``; later ones stay in place. The flag
    says every message is a plain ``{role, content: str}`` of system, user or assistant."""
    if not isinstance(value, list) or not value:
        raise RequestFieldError("messages: field required (a non-empty list)", "messages")
    system: list[str] = []
    out: list[Message] = []
    plain = True
    for i, msg in enumerate(value):
        if not isinstance(msg, Mapping):
            raise RequestFieldError(f"messages[{i}]: must be an object with role and content", "messages")
        role = msg.get("role")
        content = msg.get("content")
        if not (type(content) is str and len(msg) == 2 and type(role) is str and role in _PLAIN_ROLES):
            plain = False
            role = _INPUT_ROLES.get(role) if isinstance(role, str) else None
            if role is None:
                raise RequestFieldError(
                    f"messages[{i}].role: must be system, developer, user, assistant or tool; "
                    f"got {msg.get('role')!r}",
                    "messages",
                )
            if role == "tool":
                out.append(_tool_message_in(i, msg))
                continue
            if role == "assistant":
                out.append(_assistant_in(i, msg))
                continue
            _check_parts(i, role, content)
        if role == "system" and not out:
            system.append(message_text(content))
        else:
            out.append({"role": role, "content": content})
    if not out:
        raise RequestFieldError("messages: at least one user or assistant message is required", "messages")
    return ("\n\n".join(system) or None), out, plain


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestFieldError(f"{name}: must be a number, got {type(value).__name__}", name)
    if not low <= value <= high:
        raise RequestFieldError(f"{name}: must be between {low:g} and {high:g}, got {value}", name)
    return value


def _integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestFieldError(f"{name}: must be an integer, got {type(value).__name__}", name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RequestFieldError(f"{name}: must be between {low} and {high}, got {value}", name)
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RequestFieldError(f"{name}: must be a string, got {type(value).__name__}", name)
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RequestFieldError(f"{name}: must be a boolean, got {type(value).__name__}", name)
    return value


def _tools_in(value: Any) -> list[dict[str, Any]]:
    """``tools`` → neutral tool definitions. A function tool becomes ``{name, description,
    parameters, strict}``; a tool of another type (``custom``) is kept as it came, with its
    name beside it (``build_request`` leaves that out again)."""
    if not isinstance(value, list):
        raise RequestFieldError("tools: must be a list of tools", "tools")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise RequestFieldError(f"{where}: must be an object with a 'type'", "tools")
        kind = tool["type"]
        if kind == "function":
            function = tool.get("function")
            name = function.get("name") if isinstance(function, Mapping) else None
            if not isinstance(name, str) or not name:
                raise RequestFieldError(f"{where}.function.name: required (a non-empty string)", "tools")
            assert isinstance(function, Mapping)
            parameters = function.get("parameters")
            if parameters is None:
                parameters = {"type": "object", "properties": {}}
            elif not isinstance(parameters, Mapping):
                raise RequestFieldError(f"{where}.function.parameters: must be a JSON Schema object", "tools")
            neutral: dict[str, Any] = {"name": name}
            if function.get("description") is not None:
                neutral["description"] = _string("tools", function["description"])
            neutral["parameters"] = parameters
            if function.get("strict") is not None:
                neutral["strict"] = _boolean("tools", function["strict"])
        else:
            payload = tool.get(kind)
            name = payload.get("name") if isinstance(payload, Mapping) else None
            if not isinstance(name, str) or not name:
                name = kind if kind not in names else f"{kind}_{i}"
            neutral = {**tool, "name": name}
        if name in names:
            raise RequestFieldError(f"{where}: the tool name {name!r} is used twice", "tools")
        names.add(name)
        out.append(neutral)
    return out


def _tool_choice_in(value: Any) -> str | dict[str, Any] | None:
    """``tool_choice`` → neutral; None for ``allowed_tools``, which no neutral field expresses."""
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return value
        raise RequestFieldError(
            f"tool_choice: must be none, auto, required or a named tool, got {value!r}", "tool_choice")
    if isinstance(value, Mapping):
        kind = value.get("type")
        if isinstance(kind, str) and kind in _OPENAI_TOOL_TYPES:
            named = value.get(kind)
            if isinstance(named, Mapping) and isinstance(named.get("name"), str) and named["name"]:
                return {"name": named["name"]}
            raise RequestFieldError(f"tool_choice.{kind}.name: required", "tool_choice")
        if kind == "allowed_tools":
            return None
    raise RequestFieldError("tool_choice: must be none, auto, required or a named tool", "tool_choice")


def _format_in(value: Any) -> dict[str, Any] | None:
    """``response_format`` → neutral; None for ``text`` (the default)."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(value, Mapping)
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise RequestFieldError("response_format.json_schema.name: required", "response_format")
        schema = spec.get("schema")
        if schema is None:
            schema = {}
        elif not isinstance(schema, Mapping):
            raise RequestFieldError("response_format.json_schema.schema: must be a JSON Schema object",
                                    "response_format")
        out: dict[str, Any] = {"type": "json_schema", "name": spec["name"], "schema": schema}
        if spec.get("description") is not None:
            out["description"] = _string("response_format", spec["description"])
        if spec.get("strict") is not None:
            out["strict"] = _boolean("response_format", spec["strict"])
        return out
    raise RequestFieldError(
        f"response_format.type: must be text, json_object or json_schema, got {kind!r}", "response_format")


def _logit_bias_in(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise RequestFieldError("logit_bias: must map token ids to biases", "logit_bias")
    for bias in value.values():
        _number("logit_bias", bias, -100.0, 100.0)
    return dict(value)


def _fields_in(body: Mapping[str, Any], kwargs: dict[str, Any], unknown: list[str]) -> None:
    """Every top-level field beyond the plain ones: the neutral ones into ``kwargs``, the names
    of the others (in the body's order) into ``unknown``. A field set to null is absent."""
    for key, value in body.items():
        if key in _REQUEST_KEYS or value is None:
            continue
        if key == "top_p":
            kwargs["top_p"] = _number(key, value, 0.0, 1.0)
        elif key == "n":
            kwargs["n"] = positive_int(key, value)
        elif key == "seed":
            kwargs["seed"] = _integer(key, value)
        elif key in ("presence_penalty", "frequency_penalty"):
            kwargs[key] = _number(key, value, -2.0, 2.0)
        elif key == "logit_bias":
            kwargs[key] = _logit_bias_in(value)
        elif key == "logprobs":
            kwargs[key] = _boolean(key, value)
        elif key == "top_logprobs":
            kwargs[key] = _integer(key, value, 0, 20)
        elif key in ("user", "service_tier"):
            kwargs[key] = _string(key, value)
        elif key == "parallel_tool_calls":
            kwargs[key] = _boolean(key, value)
        elif key == "tools":
            kwargs[key] = _tools_in(value)
        elif key == "tool_choice":
            choice = _tool_choice_in(value)
            if choice is None:
                unknown.append(key)
            else:
                kwargs[key] = choice
        elif key == "response_format":
            fmt = _format_in(value)
            if fmt is not None:
                kwargs[key] = fmt
        elif key == "reasoning_effort":
            if value not in REASONING_EFFORTS:
                raise RequestFieldError(
                    f"reasoning_effort: must be one of {', '.join(REASONING_EFFORTS)}, got {value!r}", key)
            kwargs["reasoning"] = {"effort": value}
        elif key == "modalities":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise RequestFieldError("modalities: must be a list of strings", key)
            if value != ["text"]:
                unknown.append(key)
        else:
            unknown.append(key)
    if kwargs.get("top_logprobs") is not None and not kwargs.get("logprobs"):
        raise RequestFieldError("top_logprobs: requires logprobs to be true", "top_logprobs")
    choice = kwargs.get("tool_choice")
    if isinstance(choice, dict):
        tools = kwargs.get("tools") or ()
        if all(t["name"] != choice["name"] for t in tools):
            raise RequestFieldError(
                f"tool_choice: names {choice['name']!r}, which is not in tools", "tool_choice")


def _param_of(message: str, body: Mapping[str, Any]) -> str:
    """The field a neutral validation message is about (``top_p must be ...`` → ``top_p``)."""
    head = message.split(" ", 1)[0]
    for sep in ".[:":
        head = head.split(sep, 1)[0]
    return head if head in body else "messages"


def parse_request(body: Any) -> tuple[GenerationRequest, RequestOptions]:
    """Validate a ``POST /v1/chat/completions`` body as the API does; errors name the field.

    Either ``max_completion_tokens`` or the deprecated ``max_tokens`` is accepted;
    both at once is the API's 400 ``invalid_parameter_combination`` (rule 12).
    Neither means the library default (1024).

    A body of plain text messages and the plain fields skips the field table (the hot path); any
    other body gives the whole field table in neutral fields. Either way the body itself is
    ``request.origin`` (an OpenAI provider sends it as it came: ``max_tokens`` stays
    ``max_tokens`` for a server that knows no other), whose ``unknown`` (and
    ``RequestOptions.extra``) are the top-level fields no neutral field covers: ``store``,
    ``metadata``, ``functions``, an ``allowed_tools`` ``tool_choice``, ``modalities`` beyond text,
    ``audio``, ... and fields this module does not know.
    """
    body = require_object(body)
    model = require_model(body)
    system, messages, plain = _parse_messages(body.get("messages"))
    has_mct = body.get("max_completion_tokens") is not None
    has_mt = body.get("max_tokens") is not None
    if has_mct and has_mt:
        raise RequestFieldError(
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.",
            "max_tokens",
            "invalid_parameter_combination",
        )
    kwargs: dict[str, Any] = {}
    if has_mct:
        kwargs["max_tokens"] = positive_int("max_completion_tokens", body["max_completion_tokens"])
    elif has_mt:
        kwargs["max_tokens"] = positive_int("max_tokens", body["max_tokens"])
    stream = optional_bool(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise RequestFieldError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
            )
        if not isinstance(options, Mapping):
            raise RequestFieldError("stream_options: must be an object", "stream_options")
        include_usage = optional_bool(options, "include_usage")
        plain = plain and _PLAIN_STREAM_OPTIONS.issuperset(options)
    temperature = optional_temperature(body, 2.0)
    stop = stop_list("stop", body.get("stop"), _MAX_STOP)
    if plain and _REQUEST_KEYS.issuperset(body):
        request = GenerationRequest(
            messages=messages, system=system, temperature=temperature, stop=stop,
            origin=WireOrigin(API, body, plain=True), **kwargs)
        return request, RequestOptions(model=model, stream=stream, include_usage=include_usage)
    unknown: list[str] = []
    _fields_in(body, kwargs, unknown)
    try:
        request = GenerationRequest(
            messages=messages,
            system=system,
            temperature=temperature,
            stop=stop,
            origin=WireOrigin(API, body, tuple(unknown)),
            **kwargs,
        )
    except RequestFieldError:
        raise
    except InvalidRequestError as exc:
        raise RequestFieldError(exc.message, _param_of(exc.message, body)) from None
    extra = {k: body[k] for k in unknown}
    return request, RequestOptions(model=model, stream=stream, include_usage=include_usage, extra=extra)


# ---------------------------------------------------------------- server side: replies


def render_models(
    model_ids: Iterable[str], created: int = 1735689600, owned_by: str = "system"
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": owned_by} for m in model_ids],
    }


def _call_to_wire(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {"name": str(block.get("name") or ""), "arguments": str(block.get("arguments") or "")},
    }


def render_response(
    *,
    id: str,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: TokenUsage,
    created: int,
    system_fingerprint: str | None = None,
    content: Sequence[Block] | None = None,
    refusal: str | None = None,
    logprobs: Any = None,
    service_tier: str | None = "default",
) -> dict[str, Any]:
    """A plain ``chat.completion`` reply, field for field as the API sends it.

    ``content`` (neutral blocks), when given, is the answer instead of ``text``: its text
    blocks are ``message.content``, its thinking ``message.reasoning_content`` (the field
    OpenAI-compatible servers use), its tool calls ``message.tool_calls``; signatures and
    redacted thinking have no field. ``content`` is null when the answer is only tool calls
    or a refusal, as the API sends it.
    """
    message: dict[str, Any] = {"role": "assistant", "content": text}
    calls: list[dict[str, Any]] = []
    if content is not None:
        texts: list[str] = []
        thinking: list[str] = []
        for block in content:
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "thinking":
                thinking.append(str(block.get("text") or ""))
            elif kind == "tool_call":
                calls.append(_call_to_wire(block))
        joined = "".join(texts)
        message["content"] = joined if joined or not (calls or refusal) else None
        if thinking:
            message["reasoning_content"] = "".join(thinking)
        if calls:
            message["tool_calls"] = calls
    elif refusal and not text:
        message["content"] = None
    message["refusal"] = refusal
    message["annotations"] = []
    if finish_reason is None and calls:
        finish_reason = "tool_calls"
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": FROM_NEUTRAL.get(finish_reason or "stop", "stop"),
            }
        ],
        "usage": usage_to_wire(usage),
        "service_tier": service_tier,
        "system_fingerprint": system_fingerprint,
    }


def _fallback_type(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(
    status: int,
    message: str,
    type: str | None = None,
    code: str | int | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}`` with defaults for ``status``."""
    return {
        "error": {
            "message": message,
            "type": type or ERROR_TYPES.get(status, _fallback_type(status)),
            "param": param,
            "code": code if code is not None else _DEFAULT_CODES.get(status),
        }
    }


class StreamWriter:
    """SSE byte frames of one streamed completion, in the API's order.

    ``start()`` the role chunk; ``delta(text)`` one content chunk; ``deltas(items)`` the
    chunks of neutral deltas (below); ``finish()`` the finish chunk, the usage chunk
    (``choices: []``, only with ``include_usage``) and ``data: [DONE]``; ``error()`` an
    in-stream error payload (vLLM's shape: integer ``code``) followed by ``[DONE]``.

    ``deltas``: text → ``delta.content``; thinking → ``delta.reasoning_content``; refusal →
    ``delta.refusal``; a tool call → ``delta.tool_calls`` with the call's ordinal ``index``
    (0, 1, ... in order of opening, whatever the neutral index), its id, name and empty
    arguments, then each arguments piece; logprobs → the ``logprobs`` of the text chunk they
    came with; meta → the ``system_fingerprint`` / ``service_tier`` of every later chunk.
    Signatures and redacted thinking have no field in this API.
    """

    __slots__ = ("_calls", "_created", "_fingerprint", "_head", "_id", "_model", "_opened", "_tail", "_tier",
                 "include_usage")

    def __init__(
        self,
        id: str,
        model: str,
        created: int,
        include_usage: bool,
        system_fingerprint: str | None = None,
        *,
        service_tier: str | None = "default",
    ) -> None:
        self.include_usage = include_usage
        self._id = id
        self._model = model
        self._created = created
        self._fingerprint = system_fingerprint
        self._tier = service_tier
        self._calls: dict[int, int] | None = None
        self._opened = 0
        self._make_head()
        self._tail = (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def _make_head(self) -> None:
        head = orjson.dumps(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "service_tier": self._tier,
                "system_fingerprint": self._fingerprint,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":'

    def _chunk(self, delta: bytes, finish: str | None = None) -> bytes:
        reason = b"null" if finish is None else orjson.dumps(finish)
        return (
            self._head
            + b'[{"index":0,"delta":'
            + delta
            + b',"logprobs":null,"finish_reason":'
            + reason
            + b"}]"
            + self._tail
        )

    def _logprobs_chunk(self, delta: bytes, logprobs: bytes) -> bytes:
        return (
            self._head + b'[{"index":0,"delta":' + delta + b',"logprobs":' + logprobs
            + b',"finish_reason":null}]' + self._tail
        )

    def start(self) -> bytes:
        return self._chunk(b'{"role":"assistant","content":"","refusal":null}')

    def delta(self, text: str) -> bytes:
        return self._chunk(b'{"content":' + orjson.dumps(text) + b"}")

    def _ordinal(self, index: int, opening: bool) -> int:
        """The tool call's ``index`` in this stream: a new one per opening (a stream continued on
        another provider may reuse a neutral index), the open one's for its arguments."""
        calls = self._calls
        if calls is None:
            calls = self._calls = {}
        ordinal = None if opening else calls.get(index)
        if ordinal is None:
            ordinal = calls[index] = self._opened
            self._opened += 1
        return ordinal

    def deltas(self, items: Sequence[Delta]) -> bytes:
        """The chunks of a run of neutral deltas (see the class docstring); b"" for none."""
        out: list[bytes] = []
        pending: bytes | None = None
        attachable = False  # the pending chunk is text or a refusal: logprobs belong to it
        for item in items:
            kind = item.kind
            if kind == "logprobs":
                logprobs = orjson.dumps(item.value)
                if pending is not None and attachable:
                    out.append(self._logprobs_chunk(pending, logprobs))
                    pending = None
                else:
                    if pending is not None:
                        out.append(self._chunk(pending))
                        pending = None
                    out.append(self._logprobs_chunk(b"{}", logprobs))
                continue
            if pending is not None:
                out.append(self._chunk(pending))
                pending = None
            attachable = False
            if kind == "text":
                pending = b'{"content":' + orjson.dumps(item.text) + b"}"
                attachable = True
            elif kind == "thinking":
                pending = b'{"reasoning_content":' + orjson.dumps(item.text) + b"}"
            elif kind == "refusal":
                pending = b'{"refusal":' + orjson.dumps(item.text) + b"}"
                attachable = True
            elif kind == "tool_call":
                call = {"index": self._ordinal(item.index, True), "id": item.id, "type": "function",
                        "function": {"name": item.name, "arguments": ""}}
                pending = orjson.dumps({"tool_calls": [call]})
            elif kind == "tool_arguments":
                piece = {"index": self._ordinal(item.index, False), "function": {"arguments": item.text}}
                pending = orjson.dumps({"tool_calls": [piece]})
            elif kind == "fields" and isinstance(item.value, Mapping) and item.value:
                pending = orjson.dumps(item.value)
            elif kind == "meta":
                value = item.value
                if isinstance(value, Mapping):
                    if "system_fingerprint" in value:
                        self._fingerprint = value["system_fingerprint"]
                    if "service_tier" in value:
                        self._tier = value["service_tier"]
                    self._make_head()
            # signature, redacted_thinking and kinds of other APIs: nothing in this one
        if pending is not None:
            out.append(self._chunk(pending))
        return b"".join(out)

    def finish(self, finish_reason: str | None, usage: TokenUsage, stop_sequence: str | None = None) -> bytes:
        """The finish chunk, the usage chunk (with ``include_usage``) and ``[DONE]``; the API has no
        field for which stop sequence ended the answer (``stop_sequence`` is accepted and unused)."""
        out = self._chunk(b"{}", FROM_NEUTRAL.get(finish_reason or "stop", "stop"))
        if self.include_usage:
            out += self._head + b"[]," + b'"usage":' + orjson.dumps(usage_to_wire(usage)) + b"}\n\n"
        return out + DONE

    @staticmethod
    def error(status: int, message: str, type: str | None = None) -> bytes:
        body = {
            "error": {
                "message": message,
                "type": type or ERROR_TYPES.get(status, "server_error"),
                "param": None,
                "code": status,
            }
        }
        return b"data: " + orjson.dumps(body) + b"\n\n" + DONE


def render_stream(
    *,
    id: str,
    model: str,
    created: int,
    pieces: Iterable[str],
    finish_reason: str | None,
    usage: TokenUsage,
    include_usage: bool = True,
) -> Iterator[bytes]:
    """Every frame of a complete stream, for callers that have the whole reply at hand."""
    writer = StreamWriter(id, model, created, include_usage)
    yield writer.start()
    for piece in pieces:
        yield writer.delta(piece)
    yield writer.finish(finish_reason, usage)
