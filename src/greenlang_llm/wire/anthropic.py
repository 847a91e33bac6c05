"""The Anthropic Messages API on the wire, both sides of it, in one module.

The providers speak the client side, the simulator and the gateway the server
side; keeping them together keeps each mapping beside its inverse (``TO_NEUTRAL``
/ ``FROM_NEUTRAL``, ``usage_from_wire`` / ``usage_to_wire``), so a change to the
API's shape is made, and tested, in one place.

Client side (providers)::

    fit(request) -> Fit                                     # what this API drops / refuses of it
    build_request(request, model, *, stream) -> dict        # what the official SDK sends
    parse_response(body, request=None) -> ParsedResponse    # text, content blocks, neutral finish, usage
    StreamParser(provider=None, request=None).feed(event)   # str (a text delta) | list[Delta] | None
                               .finish() -> ParsedResponse   # or StreamInterruptedError

Server side (simulator, gateway)::

    parse_request(body) -> (GenerationRequest, RequestOptions)   # RequestFieldError names the field
    parse_count_tokens_request(body) -> (GenerationRequest, model)
    render_response(id=, model=, text=, finish_reason=, usage=, content=None, refusal=None) -> dict
    StreamWriter(id, model, usage).start() / .delta(text) / .deltas(items) / .finish(reason, usage)
                                   / .error(status, msg)
    error_body(status, message, type=None) -> dict;  ERROR_TYPES / STATUS_BY_TYPE
    usage_to_wire(usage) / usage_from_wire(dict);  TO_NEUTRAL / FROM_NEUTRAL finish maps
    HINT_FIELDS / MEANING_FIELDS: the top-level fields another API drops / refuses

Why the care (see tests/wire/fixtures/README.md): Anthropic's
``input_tokens`` *excludes* cache tokens while ours include them (rule 9);
``message_delta.usage`` is cumulative, so it replaces rather than adds (rule 8);
a stream is complete only when ``message_stop`` arrives, ``event: error`` ends
it inside an HTTP 200, ``ping`` and unknown events are skipped and data JSON may
be padded with spaces (rule 7).

Requests (docs/fields.md has the field table). A request whose ``origin`` is an Anthropic
body is sent as it came (``model`` and ``stream`` rewritten): every field, even unknown ones.
Any other request is translated from the neutral fields; the choices the table leaves open:

- tool-call ``arguments`` that are not a JSON object (an empty string, invalid JSON) are sent
  as ``input: {}``, as the table says for responses: the Messages API has no way to carry
  them, and an empty argument text is how OpenAI models spell "no arguments";
- a ``thinking`` block without a signature (the API rejects those) is left out: dropped
  ``thinking``; an image's ``detail`` other than ``auto`` is dropped ``detail``;
- a document is sent as a PDF ``base64`` source, a ``text`` source (``text/*`` media, base64
  decoded) or a ``url`` source; any other media type is refused;
- thinking (from ``reasoning``) is not compatible with forced tool use (``tool_choice``
  required/named, or the forced tool of ``json_object``) nor with a budget that does not fit
  below ``max_tokens``: then ``reasoning`` is dropped. When thinking is sent, ``temperature``
  (other than 1), ``top_k`` and ``top_p`` below 0.95 are dropped, as the API rejects them;
- ``response_format: json_object`` together with tools is refused (the forced tool would
  stop the model from calling the caller's tools).

Responses: ``ParsedResponse.content`` holds thinking (``text``, ``signature``),
``redacted_thinking``, text (adjacent text blocks joined, empty ones left out) and
``tool_call`` blocks (``arguments`` = the compact JSON text of ``input``); the API's own
blocks (``server_tool_use``, ``web_search_tool_result``...) are kept as they are, and a stream
hands each of them over whole as ``Delta("block", index, value=block)`` when it ends (no other
Delta kind can carry them). ``refusal`` is ``stop_details.explanation`` when the model stopped
with ``stop_reason: refusal`` (a stream hands it over with its ``message_delta`` as
``Delta("refusal", text=explanation, value={"stop_details": ...})``; an Anthropic writer puts
that back in ``stop_details``, while another API's refusal delta, the model's refusal message,
is written as text). Streamed tool arguments are re-serialised compactly in
``finish()``, so the parsed content of a stream equals the plain one's; the pieces handed out
are the API's own, so what a caller reads streamed is the same JSON value, not always the same
spacing (docs/fields.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import orjson

from .._errors import InvalidRequestError, StreamInterruptedError, UnsupportedParamsError
from .._types import GenerationRequest, Message, TokenUsage
from ..content import NEUTRAL_KINDS, Block, Delta, Reasoning, WireOrigin
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
from .field_table import ANTHROPIC_HINTS, ANTHROPIC_MEANING, OPENAI_HINTS
from .sse import ServerSentEvent, encode_event

__all__ = [
    "API",
    "ERROR_TYPES",
    "FROM_NEUTRAL",
    "HINT_FIELDS",
    "JSON_OBJECT_TOOL",
    "MEANING_FIELDS",
    "STATUS_BY_TYPE",
    "TO_NEUTRAL",
    "ParsedResponse",
    "RequestFieldError",
    "RequestOptions",
    "StreamParser",
    "StreamWriter",
    "build_request",
    "error_body",
    "error_type_for_status",
    "fit",
    "parse_count_tokens_request",
    "parse_request",
    "parse_response",
    "render_count_tokens",
    "render_models",
    "render_response",
    "render_stream",
    "usage_from_wire",
    "usage_to_wire",
]

API = "anthropic"
"""This API's name in ``WireOrigin.api``."""


# ---------------------------------------------------------------- vocabulary

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""HTTP status → ``error.type`` (fixture README rule 4)."""

FROM_NEUTRAL: dict[str, str] = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "pause": "pause_turn",
}
"""Neutral finish reason → Anthropic ``stop_reason``. Unknown values become ``end_turn``."""

STATUS_BY_TYPE: dict[str, int] = {v: k for k, v in ERROR_TYPES.items()}

TO_NEUTRAL: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop_sequence",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "pause",
}
"""Anthropic ``stop_reason`` → neutral finish reason (rule 16). Unknown values pass through."""

HINT_FIELDS = ANTHROPIC_HINTS
"""Top-level Anthropic request fields that are hints (``field_table``): a provider of another API
drops them (and says so). They stay in ``WireOrigin.unknown``."""

MEANING_FIELDS = ANTHROPIC_MEANING
"""Top-level Anthropic request fields that carry meaning no other API can express: a provider of
another API refuses them (as it refuses any other field in ``WireOrigin.unknown``)."""

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})

_REQUEST_KEYS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "temperature", "stop_sequences", "stream",
        "tools", "tool_choice", "thinking", "output_config", "metadata", "top_p", "top_k",
    }
)
"""Top-level fields the neutral request covers; any other is in ``WireOrigin.unknown``."""
_TEXT_KEYS = frozenset(
    {"model", "messages", "max_tokens", "system", "temperature", "stop_sequences", "stream"})

JSON_OBJECT_TOOL = "json_object"
"""The forced tool that carries ``response_format: json_object`` (its arguments are the answer)."""

_OPENAI_KINDS = frozenset(
    {"image_url", "input_audio", "file", "refusal", "input_text", "input_image", "input_file"})
"""Block types of OpenAI's vocabulary that have no neutral shape: refused here."""
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "cache_control", "strict"})
_SOURCES: dict[str, tuple[str, ...]] = {"image": ("base64", "url"), "document": ("base64", "url", "text")}
_EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 8192}
_MIN_BUDGET = 1024
_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_SAMPLING_HINTS = ("seed", "presence_penalty", "frequency_penalty", "logit_bias", "service_tier")


# ---------------------------------------------------------------- usage, finish and error types


def usage_from_wire(raw: Mapping[str, Any] | None) -> TokenUsage:
    """Anthropic usage → ours: input = input_tokens + cache writes + cache reads (rule 9);
    ``output_tokens_details.thinking_tokens`` → ``reasoning_tokens`` (inside output)."""
    raw = raw or {}
    write = count(raw.get("cache_creation_input_tokens"))
    read = count(raw.get("cache_read_input_tokens"))
    details = raw.get("output_tokens_details")
    thinking = count(details.get("thinking_tokens")) if type(details) is dict else 0
    return counted_usage(
        count(raw.get("input_tokens")) + write + read, count(raw.get("output_tokens")), read, write, thinking
    )


def _neutral(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return TO_NEUTRAL.get(stop_reason, stop_reason)


def usage_to_wire(u: TokenUsage) -> dict[str, Any]:
    """Ours → Anthropic's plain-response usage object (uncached input only in ``input_tokens``)."""
    wire: dict[str, Any] = {
        "input_tokens": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_tokens, "ephemeral_1h_input_tokens": 0},
        "output_tokens": u.output_tokens,
        "service_tier": "standard",
    }
    if u.reasoning_tokens:
        wire["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return wire


def error_type_for_status(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


# ---------------------------------------------------------------- client side: what fits


def _json_object(request: GenerationRequest) -> bool:
    fmt = request.response_format
    return fmt is not None and fmt.get("type") == "json_object"


def _json_mode(request: GenerationRequest | None) -> bool:
    """The request was sent with the forced ``json_object`` tool, whose input is the answer."""
    if request is None or not request.rich or not _json_object(request) or request.tools:
        return False
    return request.origin is None or request.origin.api != API


def _forces_tool(request: GenerationRequest) -> bool:
    choice = request.tool_choice
    if _json_object(request):
        return True
    return bool(request.tools) and (choice == "required" or isinstance(choice, Mapping))


def _thinking(request: GenerationRequest) -> tuple[dict[str, Any] | None, str | None, bool]:
    """``reasoning`` as (``thinking`` config, ``output_config.effort``, dropped?)."""
    reasoning: Reasoning | None = request.reasoning
    if not reasoning:
        return None, None, False
    effort = reasoning.get("effort")
    config: dict[str, Any]
    output_effort: str | None = None
    if reasoning.get("adaptive"):
        config = {"type": "adaptive"}
        if effort is not None and effort != "none":
            output_effort = "low" if effort == "minimal" else effort
    else:
        budget = reasoning.get("budget_tokens")
        if budget is None:
            if effort is None or effort == "none":
                return None, None, False
            budget = _EFFORT_BUDGETS[effort]
        elif budget == 0:
            return None, None, False
        budget = min(max(budget, _MIN_BUDGET), request.max_tokens - 1)
        if budget < _MIN_BUDGET:
            return None, None, True
        config = {"type": "enabled", "budget_tokens": budget}
    if _forces_tool(request):
        return None, None, True
    if reasoning.get("display") is not None:
        config["display"] = reasoning["display"]
    return config, output_effort, False


def _foreign_tool(tool: Mapping[str, Any], origin: WireOrigin | None) -> bool:
    """A tool of another API's own kind (OpenAI ``function``/``custom``): not ours to send."""
    if origin is not None:
        return origin.api != API
    kind = tool.get("type")
    return kind == "function" or (kind == "custom" and "input_schema" not in tool)


def _document_source(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A neutral document's Anthropic ``source``; None when the API cannot take it."""
    if isinstance(block.get("text"), str):
        return {"type": "text", "media_type": "text/plain", "data": block["text"]}
    data = block.get("data")
    if isinstance(data, str):
        media = str(block.get("media_type") or "application/pdf")
        if media == "application/pdf":
            return {"type": "base64", "media_type": media, "data": data}
        if media.startswith("text/"):
            try:
                text = base64.b64decode(data, validate=True).decode()
            except (binascii.Error, ValueError):
                return None
            return {"type": "text", "media_type": "text/plain", "data": text}
        return None
    if isinstance(block.get("url"), str):
        return {"type": "url", "url": block["url"]}
    return None


def _check_block(
    block: Mapping[str, Any], where: str, foreign: bool, dropped: list[str], refused: list[str]
) -> None:
    kind = block.get("type")
    if "source" in block and kind in _SOURCES:
        return  # this API's own source (an uploaded file, a content list): sent as it is
    if kind == "image":
        if block.get("detail") not in (None, "auto"):
            dropped.append("detail")
    elif kind == "document":
        if _document_source(block) is None:
            refused.append(f"{where}: document {block.get('media_type') or ''}".rstrip())
    elif kind == "thinking":
        if not block.get("signature"):
            dropped.append("thinking")
    elif kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            for k, part in enumerate(inner):
                if isinstance(part, Mapping):
                    _check_block(part, f"{where}.content[{k}]", foreign, dropped, refused)
    elif kind not in NEUTRAL_KINDS and (foreign or kind in _OPENAI_KINDS):
        refused.append(f"{where}: {kind}")


def fit(request: GenerationRequest) -> Fit:
    """What an Anthropic provider drops and refuses of ``request`` (docs/fields.md).

    Everything fits a text-only request and a request whose origin is an Anthropic body (sent
    as it came). Names are the caller's: an OpenAI caller's own field names (``seed``,
    ``logprobs``, ``reasoning_effort``, ``tools[1]: custom``, ``messages[0].content[1]:
    input_audio``, its unknown top-level fields), the neutral ones for a library request.
    """
    if not request.rich:
        return FITS
    origin = request.origin
    if origin is not None and origin.api == API:
        return FITS
    foreign = origin is not None
    dropped: list[str] = []
    refused: list[str] = []
    for name in _SAMPLING_HINTS:
        if getattr(request, name) is not None:
            dropped.append(name)
    if request.logprobs:
        refused.append("logprobs")
    if request.top_logprobs:
        refused.append("top_logprobs")
    if request.n is not None and request.n > 1:
        refused.append("n")
    tools: Sequence[Mapping[str, Any]] = request.tools or ()
    for i, tool in enumerate(tools):
        if "type" in tool and _foreign_tool(tool, origin):
            refused.append(f"tools[{i}]: {tool['type']}")
    if _json_object(request) and request.tools:
        refused.append("response_format")
    fmt = request.response_format
    if fmt is not None and fmt.get("description"):  # output_config.format takes a schema only
        dropped.append("response_format.description")
    for i, message in enumerate(request.to_messages()):
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                _check_block(block, f"messages[{i}].content[{j}]", foreign, dropped, refused)
    if origin is not None:
        hints = OPENAI_HINTS if origin.api == "openai" else frozenset()
        for name in origin.unknown:
            (dropped if name in hints else refused).append(name)
        messages = origin.body.get("messages")
        if origin.api == "openai" and isinstance(messages, list) and any(
            isinstance(m, Mapping) and "name" in m for m in messages
        ):
            dropped.append("messages.name")
    thinking, _effort, reasoning_dropped = _thinking(request)
    if reasoning_dropped:
        dropped.append("reasoning_effort" if foreign else "reasoning")
    if thinking is not None:
        if request.temperature is not None and request.temperature != 1:
            dropped.append("temperature")
        if request.top_k is not None:
            dropped.append("top_k")
        if request.top_p is not None and request.top_p < 0.95:
            dropped.append("top_p")
    return Fit.of(request, list(dict.fromkeys(dropped)), list(dict.fromkeys(refused)))


# ---------------------------------------------------------------- client side: requests


def build_request(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body the official SDK would send for ``request``.

    An Anthropic caller's body (``request.origin``) is sent as it came, with only ``model`` and
    ``stream`` rewritten. Otherwise: system-role messages are folded into ``system`` (the
    Messages API has no system role); ``temperature`` and ``stop_sequences`` are sent only
    when set, because API version 2026-10-21 rejects any ``temperature`` (rule 11); anything
    beyond text is translated per docs/fields.md (``fit`` says what is left out, and a refused
    field raises ``UnsupportedParamsError``).
    """
    origin = request.origin
    if origin is not None and origin.api == API:
        body = dict(origin.body)
        body["model"] = model
        body["stream"] = stream
        return body
    if request.rich:
        return _translate(request, model, stream)
    system_parts = [request.system] if request.system else []
    messages: list[Message] = []
    for msg in request.to_messages():
        if msg["role"] == "system":
            text = message_text(msg["content"])
            if text:
                system_parts.append(text)
        else:
            messages.append({"role": msg["role"], "content": msg["content"]})
    body = {"model": model, "max_tokens": request.max_tokens, "messages": messages}
    if system_parts:
        body["system"] = "\n\n".join(system_parts)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    body["stream"] = stream
    return body


def _arguments(text: Any) -> dict[str, Any]:
    """Tool-call arguments (JSON text) as a ``tool_use`` input: anything but a JSON object is ``{}``."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _with_cache(out: dict[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    cache = block.get("cache_control")
    if cache is not None:
        out["cache_control"] = cache
    return out


def _image_out(block: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(block.get("data"), str):
        source = {"type": "base64", "media_type": str(block.get("media_type") or ""), "data": block["data"]}
    else:
        source = {"type": "url", "url": str(block.get("url") or "")}
    return _with_cache({"type": "image", "source": source}, block)


def _document_out(block: Mapping[str, Any]) -> dict[str, Any]:
    source = _document_source(block)
    if source is None:  # fit refused it; a caller that skipped fit gets the API's own 400
        source = {"type": "base64", "media_type": str(block.get("media_type") or ""),
                  "data": str(block.get("data") or "")}
    out: dict[str, Any] = {"type": "document", "source": source}
    for name in ("title", "context", "citations"):
        if block.get(name) is not None:
            out[name] = block[name]
    return _with_cache(out, block)


def _block_out(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """One neutral block in the Messages API's vocabulary (None: not sent)."""
    kind = block.get("type")
    if kind == "text":
        if not block.get("text"):
            return None
        return block if type(block) is dict else dict(block)
    if kind == "tool_call":
        out = {"type": "tool_use", "id": block.get("id", ""), "name": block.get("name", ""),
               "input": _arguments(block.get("arguments"))}
        return _with_cache(out, block)
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            content = [b for part in content if (b := _block_out(part)) is not None]
        out = {"type": "tool_result", "tool_use_id": block.get("tool_call_id", ""), "content": content}
        if block.get("is_error"):
            out["is_error"] = True
        return _with_cache(out, block)
    if kind in _SOURCES and "source" in block:
        return dict(block)  # this API's own source (an uploaded file, a content list), as it is
    if kind == "image":
        return _image_out(block)
    if kind == "document":
        return _document_out(block)
    if kind == "thinking":
        signature = block.get("signature")
        if not signature:
            return None  # the API takes no unsigned thinking (fit: dropped "thinking")
        return {"type": "thinking", "thinking": block.get("text", ""), "signature": signature}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return dict(block)  # the API's own block (search_result, ...), as it is


def _tool_out(tool: Mapping[str, Any]) -> dict[str, Any]:
    if "type" in tool:
        return dict(tool)  # a server tool or a custom tool as the API spells it
    out: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description") is not None:
        out["description"] = tool["description"]
    out["input_schema"] = tool.get("parameters") or {"type": "object"}
    if tool.get("strict") is not None:
        out["strict"] = tool["strict"]
    return _with_cache(out, tool)


def _choice_out(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, Mapping):
        out = {"type": "tool", "name": choice["name"]}
    else:
        out = {"type": "auto"}
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _as_list(content: Any) -> list[Any]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def _translate(request: GenerationRequest, model: str, stream: bool) -> dict[str, Any]:
    verdict = fit(request)
    if verdict.refused:
        raise UnsupportedParamsError(
            f"the Anthropic Messages API cannot serve {', '.join(verdict.refused)}", fields=verdict.refused
        )
    system: list[dict[str, Any]] = [{"type": "text", "text": request.system}] if request.system else []
    cached = False
    messages: list[Message] = []
    for msg in request.to_messages():
        role, content = msg["role"], msg["content"]
        if role == "system":
            if isinstance(content, list):
                for block in content:
                    if block.get("type") == "text" and block.get("text"):
                        system.append(_with_cache({"type": "text", "text": block["text"]}, block))
                        cached = cached or "cache_control" in block
            elif content:
                system.append({"type": "text", "text": content})
            continue
        if isinstance(content, list):
            content = [b for block in content if (b := _block_out(block)) is not None]
            if not content:
                continue
        if messages and messages[-1]["role"] == role:  # the API wants user and assistant turns to alternate
            messages[-1]["content"] = _as_list(messages[-1]["content"]) + _as_list(content)
        else:
            messages.append({"role": role, "content": content})
    body: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens, "messages": messages}
    if system:
        body["system"] = system if cached else "\n\n".join(b["text"] for b in system)
    thinking, effort, _dropped = _thinking(request)
    if request.temperature is not None and (thinking is None or request.temperature == 1):
        body["temperature"] = request.temperature
    if request.top_p is not None and (thinking is None or request.top_p >= 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and thinking is None:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    tools = [_tool_out(t) for t in request.tools or ()]
    if _json_object(request):
        tools.append({"name": JSON_OBJECT_TOOL, "description": "Answer with a JSON object.",
                      "input_schema": {"type": "object"}})
        choice: dict[str, Any] | None = {"type": "tool", "name": JSON_OBJECT_TOOL}
    else:
        choice = _choice_out(request.tool_choice, request.parallel_tool_calls) if tools else None
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if thinking is not None:
        body["thinking"] = thinking
    output: dict[str, Any] = {}
    fmt = request.response_format
    if fmt is not None and fmt.get("type") == "json_schema":
        output["format"] = {"type": "json_schema", "schema": fmt.get("schema")}
    if effort is not None:
        output["effort"] = effort
    if output:
        body["output_config"] = output
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    body["stream"] = stream
    if request.extra:
        body.update(request.extra)
    return body


# ---------------------------------------------------------------- client side: replies


def _add_text(out: list[Block], text: str) -> None:
    """Append text to an answer's blocks, joining it to a text block just before."""
    if not text:
        return
    if out and out[-1]["type"] == "text":
        out[-1] = {"type": "text", "text": out[-1]["text"] + text}
    else:
        out.append({"type": "text", "text": text})


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value if value is not None else {}).decode()
    except orjson.JSONEncodeError:  # (an integer beyond 64 bits: not from a real API)
        return "{}"


def _answer(content: list[Any], json_mode: bool) -> tuple[str, list[Block] | None]:
    """An answer's content blocks → (text, neutral blocks or None when it is text only)."""
    for b in content:
        if type(b) is dict and b.get("type") != "text":
            break
    else:
        return message_text(content), None
    out: list[Block] = []
    for b in content:
        if not isinstance(b, Mapping):
            continue
        kind = b.get("type")
        if kind == "text":
            _add_text(out, str(b.get("text") or ""))
        elif kind == "thinking":
            block: Block = {"type": "thinking", "text": str(b.get("thinking") or "")}
            if isinstance(b.get("signature"), str) and b["signature"]:
                block["signature"] = b["signature"]
            out.append(block)
        elif kind == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": str(b.get("data") or "")})
        elif kind == "tool_use":
            if json_mode and b.get("name") == JSON_OBJECT_TOOL:
                _add_text(out, _json_text(b.get("input")))
            else:
                out.append({
                    "type": "tool_call", "id": str(b.get("id") or ""), "name": str(b.get("name") or ""),
                    "arguments": _json_text(b.get("input")),
                })
        elif isinstance(kind, str):
            out.append(dict(b))  # the API's own block (server_tool_use...), as it came
    text = "".join(b["text"] for b in out if b["type"] == "text")
    if all(b["type"] == "text" for b in out):
        return text, None
    return text, out


def _refusal(stop_reason: Any, details: Any) -> str | None:
    if stop_reason != "refusal" or not isinstance(details, Mapping):
        return None
    explanation = details.get("explanation")
    return explanation if isinstance(explanation, str) and explanation else None


def parse_response(body: Mapping[str, Any], request: GenerationRequest | None = None) -> ParsedResponse:
    """A plain ``POST /v1/messages`` reply; text is the concatenation of its text blocks.

    ``request`` (the one sent) says whether the answer came in the forced ``json_object``
    tool: its input is then the text, and ``stop_reason: tool_use`` means ``end_turn``.
    """
    content = body.get("content")
    json_mode = _json_mode(request) if request is not None else False
    text, blocks = _answer(content, json_mode) if isinstance(content, list) else ("", None)
    raw_usage = body.get("usage")
    stop_reason = body.get("stop_reason")
    if json_mode and stop_reason == "tool_use":
        stop_reason = "end_turn"
    stop_sequence = body.get("stop_sequence")
    return ParsedResponse(
        text=text,
        finish_reason=_neutral(stop_reason),
        usage=usage_from_wire(raw_usage) if isinstance(raw_usage, Mapping) else None,
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        native_finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        content=blocks,
        refusal=_refusal(stop_reason, body.get("stop_details")) if stop_reason == "refusal" else None,
    )


class _Open:
    """A non-text block of a stream, while it arrives."""

    __slots__ = ("block", "index", "kind", "pieces", "position")

    def __init__(self, kind: str, index: int, position: int, block: dict[str, Any]) -> None:
        self.kind = kind
        """thinking, redacted_thinking, tool_call, json (the json_object tool: text), native."""
        self.index = index
        self.position = position
        """How many text pieces came before it (where it sits among the text)."""
        self.block = block
        self.pieces: list[str] = []

    def final(self) -> Block:
        block = self.block
        if self.kind == "thinking":
            out: Block = {"type": "thinking", "text": "".join(self.pieces)}
            if block.get("signature"):
                out["signature"] = block["signature"]
            return out
        if self.kind == "tool_call":
            return {**block, "arguments": _compact("".join(self.pieces))}
        if self.kind == "native" and self.pieces:
            try:
                return {**block, "input": orjson.loads("".join(self.pieces))}
            except orjson.JSONDecodeError:
                return block
        return block


def _compact(text: str) -> str:
    """Streamed JSON arguments as parse_response spells them (compact); invalid ones as they came."""
    if not text.strip():
        return "{}"
    try:
        return orjson.dumps(orjson.loads(text)).decode()
    except orjson.JSONDecodeError:
        return text


class StreamParser:
    """Accumulates one Anthropic SSE stream; ``feed`` returns each text delta.

    A text delta comes back as a ``str`` (the hot path); a thinking block, a tool call or any
    other block's pieces as a list of ``Delta`` (``index`` = the API's block index); events
    carrying nothing as None. Raises ``StreamInterruptedError`` (with the text so far) on
    ``event: error`` or invalid JSON, and from ``finish()`` if ``message_stop`` never came.
    Events after ``message_stop`` are ignored. ``request`` (the one sent) tells whether the
    answer comes in the forced ``json_object`` tool, whose argument pieces are then text.
    """

    __slots__ = (
        "_blocks", "_blocks_seen", "_json_mode", "_open", "_parts", "_refusal", "_usage", "done", "id",
        "model", "provider", "stop_reason", "stop_sequence",
    )

    def __init__(self, provider: str | None = None, request: GenerationRequest | None = None) -> None:
        self.provider = provider
        self._parts: list[str] = []
        self._usage: dict[str, Any] = {}
        self.id = ""
        self.model = ""
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.done = False
        self._json_mode = _json_mode(request) if request is not None else False
        self._blocks: list[_Open] | None = None
        self._open: dict[Any, _Open] | None = None
        self._refusal: str | None = None
        self._blocks_seen = 0

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def finish_reason(self) -> str | None:
        return _neutral(self.stop_reason)

    @property
    def usage(self) -> TokenUsage | None:
        return usage_from_wire(self._usage) if self._usage else None

    @property
    def raw_usage(self) -> Mapping[str, Any]:
        """The usage object as sent (message_start merged with message_delta), e.g. for the
        5-minute/1-hour split in ``cache_creation`` that pricing needs."""
        return self._usage

    def _interrupted(self, message: str, retryable: bool = True, status: int | None = None) -> NoReturn:
        raise StreamInterruptedError(
            message, retryable=retryable, provider=self.provider, status_code=status, partial_text=self.text
        )

    def _object(self, data: Mapping[str, Any], name: str, kind: str) -> Mapping[str, Any]:
        """``data[name]`` as an object ({} when absent); anything else is a broken stream, not a crash."""
        value = data.get(name) or {}
        if type(value) is not dict and not isinstance(value, Mapping):  # (orjson gives dicts: no ABC check)
            self._interrupted(f"malformed {kind} event: {name} is not an object")
        return value

    def feed(self, event: ServerSentEvent) -> str | list[Delta] | None:
        if self.done:
            return None
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self._interrupted(f"invalid JSON in stream event {event.event or 'message'!r}")
        if not isinstance(data, dict):
            self._interrupted("stream event data is not a JSON object")
        kind = event.event or data.get("type")
        if kind == "content_block_delta":
            delta = self._object(data, "delta", kind)
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    self._parts.append(text)
                    return text
                return None
            return self._piece(data.get("index"), delta, dtype)
        if kind == "message_start":
            message = self._object(data, "message", kind)
            self.id = str(message.get("id") or "")
            self.model = str(message.get("model") or "")
            if isinstance(message.get("usage"), Mapping):
                self._usage = dict(message["usage"])
        elif kind == "content_block_start":
            block = self._object(data, "content_block", kind)
            self._blocks_seen += 1
            if block.get("type") == "text":
                text = block.get("text")
                if isinstance(text, str) and text:
                    self._parts.append(text)
                    return text
                return None
            return self._start(data.get("index"), block)
        elif kind == "content_block_stop":
            if self._open is not None:
                return self._stop(data.get("index"))
        elif kind == "message_delta":
            delta = self._object(data, "delta", kind)
            reason, sequence = delta.get("stop_reason"), delta.get("stop_sequence")
            if self._json_mode and reason == "tool_use":
                reason = "end_turn"
            self.stop_reason = reason if isinstance(reason, str) and reason else self.stop_reason
            self.stop_sequence = sequence if isinstance(sequence, str) and sequence else self.stop_sequence
            if isinstance(data.get("usage"), Mapping):  # cumulative: replace, never add (rule 8)
                self._usage.update({k: v for k, v in data["usage"].items() if v is not None})
            if reason == "refusal":
                details = delta.get("stop_details")
                self._refusal = _refusal(reason, details)
                if self._refusal is not None and isinstance(details, Mapping):
                    value = {"stop_details": dict(details)}
                    return [Delta("refusal", self._blocks_seen, text=self._refusal, value=value)]
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            err = self._object(data, "error", kind)
            err_type = str(err.get("type") or "api_error")
            self._interrupted(
                f"stream error {err_type}: {err.get('message') or ''}".strip(),
                retryable=err_type in _RETRYABLE_TYPES,
                status=STATUS_BY_TYPE.get(err_type),
            )
        return None  # ping, unknown events

    def _start(self, index: Any, block: Mapping[str, Any]) -> str | list[Delta] | None:
        """A non-text block begins."""
        if not isinstance(index, int):
            self._interrupted("malformed content_block_start event: no index")
        if self._open is None:
            self._open, self._blocks = {}, []
        kind = block.get("type")
        position = len(self._parts)
        out: list[Delta]
        if kind == "thinking":
            entry = _Open("thinking", index, position, {})
            text = block.get("thinking")
            text = text if isinstance(text, str) else ""
            if text:
                entry.pieces.append(text)
            out = [Delta("thinking", index, text=text)]
            signature = block.get("signature")
            if isinstance(signature, str) and signature:
                entry.block["signature"] = signature
                out.append(Delta("signature", index, text=signature))
        elif kind == "redacted_thinking":
            data = str(block.get("data") or "")
            entry = _Open("redacted_thinking", index, position, {"type": "redacted_thinking", "data": data})
            out = [Delta("redacted_thinking", index, text=data)]
        elif kind == "tool_use":
            name = str(block.get("name") or "")
            given = block.get("input")
            if self._json_mode and name == JSON_OBJECT_TOOL:
                self._open[index] = _Open("json", index, position, {})
                if isinstance(given, dict) and given:
                    text = _json_text(given)
                    self._parts.append(text)
                    return text
                return None
            call_id = str(block.get("id") or "")
            entry = _Open("tool_call", index, position, {"type": "tool_call", "id": call_id, "name": name})
            out = [Delta("tool_call", index, id=call_id, name=name)]
            if isinstance(given, dict) and given:
                entry.pieces.append(_json_text(given))
                out.append(Delta("tool_arguments", index, text=entry.pieces[0]))
        elif isinstance(kind, str):
            entry = _Open("native", index, position, dict(block))
            out = []
        else:
            return None  # a block without a type: nothing to keep
        self._open[index] = entry
        self._blocks.append(entry)  # type: ignore[union-attr]
        return out or None

    def _piece(self, index: Any, delta: Mapping[str, Any], dtype: Any) -> str | list[Delta] | None:
        """A delta of a non-text block."""
        entry = self._open.get(index) if self._open is not None else None
        if entry is None:
            return None
        if dtype == "input_json_delta":
            piece = delta.get("partial_json")
            if not isinstance(piece, str) or not piece:
                return None
            if entry.kind == "json":
                self._parts.append(piece)
                return piece
            entry.pieces.append(piece)
            return [Delta("tool_arguments", index, text=piece)] if entry.kind == "tool_call" else None
        if dtype == "thinking_delta":
            piece = delta.get("thinking")
            if isinstance(piece, str) and piece and entry.kind == "thinking":
                entry.pieces.append(piece)
                return [Delta("thinking", index, text=piece)]
        elif dtype == "signature_delta":
            signature = delta.get("signature")
            if isinstance(signature, str) and entry.kind == "thinking":
                entry.block["signature"] = signature
                return [Delta("signature", index, text=signature)]
        return None  # citations_delta and unknown deltas: nothing neutral

    def _stop(self, index: Any) -> list[Delta] | None:
        entry = self._open.get(index) if self._open is not None else None
        if entry is None or entry.kind != "native":
            return None
        return [Delta("block", index, value=entry.final())]

    def _content(self) -> list[Block] | None:
        if not self._blocks:
            return None
        out: list[Block] = []
        parts, last = self._parts, 0
        for entry in self._blocks:
            if entry.position > last:
                _add_text(out, "".join(parts[last:entry.position]))
                last = entry.position
            out.append(entry.final())
        _add_text(out, "".join(parts[last:]))
        return out

    def finish(self) -> ParsedResponse:
        """Call when the byte stream ended; raises if it ended without ``message_stop``."""
        if not self.done:
            self._interrupted("stream ended before message_stop")
        return ParsedResponse(
            text=self.text,
            finish_reason=self.finish_reason,
            usage=self.usage,
            id=self.id,
            model=self.model,
            native_finish_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            content=self._content(),
            refusal=self._refusal,
        )


# ---------------------------------------------------------------- server side: requests


def _parse_system(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        for i, block in enumerate(value):
            if (
                not isinstance(block, Mapping)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise RequestFieldError(f"system.{i}: must be a text block with a string 'text'", "system")
        return "\n".join(str(b["text"]) for b in value) or None
    raise RequestFieldError("system: must be a string or a list of text blocks", "system")


def _opaque(block: Any) -> Any:
    """A block whose source the neutral model has no shape for (a Files API ``file``, a
    ``content`` document) as an API-own block ``image_file`` / ``document_content``: forwarded
    with the caller's body to this API, refused by another."""
    if not isinstance(block, Mapping):
        return block
    kind = block.get("type")
    if kind in _SOURCES:
        source = block.get("source")
        if isinstance(source, Mapping) and source.get("type") not in _SOURCES[kind]:
            return {**block, "type": f"{kind}_{source.get('type')}"}
    elif kind == "tool_result" and isinstance(block.get("content"), list):
        inner = [_opaque(b) for b in block["content"]]
        if any(a is not b for a, b in zip(inner, block["content"], strict=True)):
            return {**block, "content": inner}
    return block


def _parse_messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise RequestFieldError("messages: field required (a non-empty list)", "messages")
    out: list[Message] = []
    for i, msg in enumerate(value):
        if not isinstance(msg, Mapping):
            raise RequestFieldError(f"messages.{i}: must be an object with role and content", "messages")
        if msg.get("role") not in ("user", "assistant"):
            raise RequestFieldError(
                f"messages.{i}.role: must be 'user' or 'assistant', got {msg.get('role')!r}", "messages"
            )
        content = msg.get("content")
        check_content(f"messages.{i}", content)
        if isinstance(content, list):
            content = [_opaque(b) for b in content]
        out.append({"role": msg["role"], "content": content})
    return out


def _unit(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestFieldError(f"{name}: must be a number, got {type(value).__name__}", name)
    if not 0.0 <= value <= 1.0:
        raise RequestFieldError(f"{name}: must be between 0 and 1, got {value}", name)
    return float(value)


def _parse_tools(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise RequestFieldError("tools: must be a list of tools", "tools")
    out: list[Any] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping):
            raise RequestFieldError(f"tools.{i}: must be an object", "tools")
        kind = tool.get("type")
        name = tool.get("name")
        if kind is None or kind == "custom":
            if not isinstance(name, str) or not name:
                raise RequestFieldError(f"tools.{i}.name: field required (a non-empty string)", "tools")
            schema = tool.get("input_schema")
            if not isinstance(schema, Mapping):
                raise RequestFieldError(
                    f"tools.{i}.input_schema: field required (a JSON Schema object)", "tools")
            description = tool.get("description")
            if description is not None and not isinstance(description, str):
                raise RequestFieldError(f"tools.{i}.description: must be a string", "tools")
            if tool.keys() <= _TOOL_KEYS:
                neutral: dict[str, Any] = {"name": name}
                if description is not None:
                    neutral["description"] = description
                neutral["parameters"] = schema
                if isinstance(tool.get("strict"), bool):
                    neutral["strict"] = tool["strict"]
                out.append(_with_cache(neutral, tool))
            else:  # fields the neutral tool has no room for: kept as the API's own tool
                out.append({"type": "custom", **tool})
            continue
        if not isinstance(kind, str):
            raise RequestFieldError(f"tools.{i}.type: must be a string", "tools")
        if not isinstance(name, str) or not name:
            # (an mcp_toolset names its server instead; the neutral model wants a name. This copy
            # only serves another API, which refuses it; this API gets the caller's body.)
            name = str(tool.get("mcp_server_name") or kind)
            out.append({**tool, "name": name})
        else:
            out.append(dict(tool))
    return out


_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _parse_tool_choice(value: Any) -> tuple[Any, bool | None]:
    if not isinstance(value, Mapping) or value.get("type") not in ("auto", "any", "tool", "none"):
        raise RequestFieldError(
            "tool_choice: must be an object with type auto, any, tool or none", "tool_choice")
    disable = value.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise RequestFieldError("tool_choice.disable_parallel_tool_use: must be a boolean", "tool_choice")
    parallel = False if disable else None
    kind = value["type"]
    if kind == "tool":
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise RequestFieldError("tool_choice.name: field required for type 'tool'", "tool_choice")
        return {"name": name}, parallel
    return _CHOICES[kind], parallel


def _parse_thinking(value: Any, max_tokens: int | None, unknown: list[str]) -> Reasoning | None:
    if not isinstance(value, Mapping):
        raise RequestFieldError("thinking: must be an object", "thinking")
    kind = value.get("type")
    display = value.get("display")
    if display is not None and display not in ("summarized", "omitted"):
        raise RequestFieldError("thinking.display: must be 'summarized' or 'omitted'", "thinking")
    reasoning: Reasoning
    if kind == "enabled":
        budget = value.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise RequestFieldError("thinking.budget_tokens: field required (an integer)", "thinking")
        if budget < _MIN_BUDGET:
            raise RequestFieldError(f"thinking.budget_tokens: must be at least {_MIN_BUDGET}", "thinking")
        if max_tokens is not None and budget >= max_tokens:
            raise RequestFieldError("thinking.budget_tokens: must be less than max_tokens", "thinking")
        reasoning = {"budget_tokens": budget}
    elif kind == "adaptive":
        reasoning = {"adaptive": True}
    elif kind == "disabled":
        return None
    elif isinstance(kind, str) and kind:
        unknown.append("thinking")  # a mode the neutral model has no word for (between_tools...)
        return None
    else:
        raise RequestFieldError("thinking.type: must be enabled, adaptive or disabled", "thinking")
    if display is not None:
        reasoning["display"] = display
    return reasoning


def _parse_output_config(value: Any, unknown: list[str]) -> tuple[Any, str | None]:
    if not isinstance(value, Mapping):
        raise RequestFieldError("output_config: must be an object", "output_config")
    fmt = value.get("format")
    response_format = None
    if fmt is not None:
        if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema" or not isinstance(
            fmt.get("schema"), Mapping
        ):
            raise RequestFieldError(
                "output_config.format: must be {'type': 'json_schema', 'schema': {...}}", "output_config")
        response_format = {"type": "json_schema", "name": "response", "schema": fmt["schema"]}
    effort = value.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise RequestFieldError(
            f"output_config.effort: must be one of {', '.join(_EFFORTS)}", "output_config")
    if value.keys() - {"format", "effort"}:
        unknown.append("output_config")  # more than another API can be told
    return response_format, effort


def _field_error(exc: InvalidRequestError) -> RequestFieldError:
    """The neutral model's validation error, naming the top-level field it starts with."""
    message = str(exc)
    head = message.split("[", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    return RequestFieldError(message, head if head in _REQUEST_KEYS else None)


_OPENAI_MAX_STOP = 4
"""Chat Completions takes at most 4 stop sequences: more make the request one to ask about."""


def _neutral_request(body: Mapping[str, Any], max_tokens: int | None) -> tuple[GenerationRequest, list[str]]:
    """Every field of the Messages API's request into the neutral request; → (it, unknown fields)."""
    messages = _parse_messages(body.get("messages"))
    fields: dict[str, Any] = {}
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
        fields["temperature"] = optional_temperature(body, 1.0)
        fields["stop"] = stop_list("stop_sequences", body.get("stop_sequences"), 8191)
    plain = body.keys() <= _TEXT_KEYS
    if plain:  # the text-only request: nothing more to read
        unknown: list[str] = []
        system = body.get("system")
        plain = system is None or type(system) is str or (isinstance(system, list) and not any(
            isinstance(b, Mapping) and "cache_control" in b for b in system))
        stop = fields.get("stop")
        if stop is not None and len(stop) > _OPENAI_MAX_STOP:  # more than another API can take
            plain = False
    else:
        unknown = _rich_fields(body, max_tokens, fields)
    try:
        request = GenerationRequest(
            messages=messages,
            system=_parse_system(body.get("system")),
            origin=WireOrigin(API, body, tuple(unknown), plain),
            **fields,
        )
    except RequestFieldError:
        raise
    except InvalidRequestError as exc:
        raise _field_error(exc) from None
    return request, unknown


def _rich_fields(body: Mapping[str, Any], max_tokens: int | None, fields: dict[str, Any]) -> list[str]:
    """The fields beyond text into ``fields``; → the top-level fields the table does not know."""
    unknown = [k for k in body if k not in _REQUEST_KEYS]
    if body.get("tools") is not None:
        fields["tools"] = _parse_tools(body["tools"])
    if body.get("tool_choice") is not None:
        fields["tool_choice"], fields["parallel_tool_calls"] = _parse_tool_choice(body["tool_choice"])
    reasoning: Reasoning | None = None
    if body.get("thinking") is not None:
        reasoning = _parse_thinking(body["thinking"], max_tokens, unknown)
    if body.get("output_config") is not None:
        fields["response_format"], effort = _parse_output_config(body["output_config"], unknown)
        if effort is not None:
            reasoning = {**(reasoning or {}), "effort": effort}
    if reasoning is not None:
        fields["reasoning"] = reasoning
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise RequestFieldError("metadata: must be an object", "metadata")
        user = metadata.get("user_id")
        if user is not None and not isinstance(user, str):
            raise RequestFieldError("metadata.user_id: must be a string", "metadata")
        fields["user"] = user
        if metadata.keys() - {"user_id"}:
            unknown.append("metadata")
    if body.get("top_p") is not None:
        fields["top_p"] = _unit(body, "top_p")
    if body.get("top_k") is not None:
        fields["top_k"] = positive_int("top_k", body["top_k"])
    return unknown


def parse_request(body: Any) -> tuple[GenerationRequest, RequestOptions]:
    """Validate a ``POST /v1/messages`` body as the API does; errors name the field.

    Every field of the table becomes its neutral field; the body itself is the request's
    ``origin`` (an Anthropic provider sends it as it came), and the fields the table does not
    know are ``origin.unknown`` and ``RequestOptions.extra`` (another API refuses them, but
    drops ``HINT_FIELDS``). A body of the text fields only, string contents and no
    ``cache_control`` is ``origin.plain``: the request is then not ``rich`` (no provider is asked
    what it drops), and an Anthropic provider still sends the body as it came.
    """
    body = require_object(body)
    model = require_model(body)
    if "max_tokens" not in body:
        raise RequestFieldError("max_tokens: field required", "max_tokens")
    max_tokens = positive_int("max_tokens", body["max_tokens"])
    request, unknown = _neutral_request(body, max_tokens)
    extra = {k: body[k] for k in unknown if k in body}
    return request, RequestOptions(model=model, stream=optional_bool(body, "stream"), extra=extra)


def parse_count_tokens_request(body: Any) -> tuple[GenerationRequest, str]:
    """Validate a ``POST /v1/messages/count_tokens`` body (no ``max_tokens`` there; tools,
    tool_choice and thinking count toward the input and are parsed as for a message)."""
    body = require_object(body)
    model = require_model(body)
    request, _unknown = _neutral_request(body, None)
    return request, model


# ---------------------------------------------------------------- server side: replies


def render_count_tokens(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}


def render_models(model_ids: Iterable[str], created_at: str = "2025-01-01T00:00:00Z") -> dict[str, Any]:
    """``GET /v1/models`` (Anthropic shape: ``data``, ``has_more``, ``first_id``, ``last_id``)."""
    data = [{"type": "model", "id": m, "display_name": m, "created_at": created_at} for m in model_ids]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _render_block(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return {"type": "text", "text": text} if isinstance(text, str) and text else None
    if kind == "tool_call":
        return {"type": "tool_use", "id": str(block.get("id") or ""), "name": str(block.get("name") or ""),
                "input": _arguments(block.get("arguments"))}
    if kind == "thinking":
        return {"type": "thinking", "thinking": str(block.get("text") or ""),
                "signature": str(block.get("signature") or "")}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": str(block.get("data") or "")}
    return dict(block)  # the API's own block (server_tool_use...), as the upstream sent it


def render_response(
    *,
    id: str,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: TokenUsage,
    stop_sequence: str | None = None,
    content: Sequence[Block] | None = None,
    refusal: str | None = None,
    logprobs: Any = None,
) -> dict[str, Any]:
    """A plain ``POST /v1/messages`` reply, field for field as the API sends it.

    ``content`` (neutral blocks: thinking, text, tool calls, in order) replaces ``text`` when
    given; a ``refusal`` becomes a text block (``finish_reason`` content_filter → ``refusal``).
    ``logprobs`` is accepted for a call shared with ``wire.openai`` and has no field here (a
    request asking for them is refused by this API).
    """
    if content is None:
        blocks = [{"type": "text", "text": text}] if text or not refusal else []
    else:
        blocks = [b for block in content if (b := _render_block(block)) is not None]
    if refusal:
        blocks.append({"type": "text", "text": refusal})
    return {
        "model": model,
        "id": id,
        "type": "message",
        "role": "assistant",
        "content": blocks,
        "stop_reason": FROM_NEUTRAL.get(finish_reason or "stop", "end_turn"),
        "stop_sequence": stop_sequence,
        "stop_details": None,
        "usage": usage_to_wire(usage),
    }


def error_body(
    status: int, message: str, type: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """``{"type":"error","error":{"type","message"},"request_id"}`` with the type for ``status``."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": type or error_type_for_status(status), "message": message},
    }
    if request_id:
        body["request_id"] = request_id
    return body


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data), name)


_PING = encode_event(b'{"type": "ping"}', "ping")
_TEXT_START = _event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
_BLOCK_STOP = _event("content_block_stop", {"type": "content_block_stop", "index": 0})
_MESSAGE_STOP = _event("message_stop", {"type": "message_stop"})
_DELTA_HEAD = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)
_THINKING_BLOCK = {"type": "thinking", "thinking": "", "signature": ""}
_CUMULATIVE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


class StreamWriter:
    """SSE byte frames of one streamed message, in the API's order.

    ``start()`` = message_start + ping; blocks open lazily: ``delta(text)`` opens a text block
    when none is open, then writes one text_delta; ``deltas(items)`` writes neutral ``Delta``
    objects (a new ``index`` or kind closes the open block and opens the next one, numbered by
    this writer: thinking, redacted_thinking, tool_use, the API's own blocks); ``finish()``
    = content_block_stop of the open block + message_delta (cumulative usage) + message_stop;
    ``error()`` the in-stream ``event: error``. Call ``finish()`` after the last delta.
    """

    __slots__ = ("_head", "_kind", "_next", "_source", "_stop_details", "id", "model", "usage")

    def __init__(self, id: str, model: str, usage: TokenUsage) -> None:
        self.id, self.model, self.usage = id, model, usage
        self._kind: str | None = None
        """The open block's kind (text, thinking, redacted_thinking, tool_use, block) or None."""
        self._next = 0
        """The index of the next block to open."""
        self._source: int | None = None
        """The open block's index in the deltas written (None for text written by ``delta``)."""
        self._head = _DELTA_HEAD
        self._stop_details: Any = None

    def start(self) -> bytes:
        wire = usage_to_wire(self.usage)
        wire["output_tokens"] = 1  # the API's placeholder; the real count comes in message_delta
        message: dict[str, Any] = {
            "model": self.model,
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "usage": wire,
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _PING

    def delta(self, text: str) -> bytes:
        if self._kind == "text":
            return self._head + orjson.dumps(text) + b"}}\n\n"
        return self._open_text(None) + self._head + orjson.dumps(text) + b"}}\n\n"

    def _close(self) -> bytes:
        if self._kind is None:
            return b""
        self._kind = None
        index = self._next - 1
        return _BLOCK_STOP if index == 0 else _event(
            "content_block_stop", {"type": "content_block_stop", "index": index})

    def _open(self, kind: str, block: Mapping[str, Any], source: int | None) -> bytes:
        out = self._close()
        index = self._next
        self._next, self._kind, self._source = index + 1, kind, source
        return out + _event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": block})

    def _open_text(self, source: int | None) -> bytes:
        if self._next == 0 and self._kind is None:
            self._next, self._kind, self._source, self._head = 1, "text", source, _DELTA_HEAD
            return _TEXT_START
        out = self._open("text", {"type": "text", "text": ""}, source)
        self._head = _DELTA_HEAD.replace(b'"index":0', b'"index":%d' % (self._next - 1))
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": self._next - 1, "delta": delta})

    def deltas(self, items: Sequence[Delta]) -> bytes:
        """Frames for neutral stream deltas (docs/fields.md, "Responses"): text and refusal text as
        text_delta, thinking as thinking_delta (+ signature_delta), tool calls as tool_use blocks
        and their arguments as input_json_delta; logprobs and meta have no Anthropic field."""
        out: list[bytes] = []
        for d in items:
            kind = d.kind
            if kind == "text":
                if d.text:
                    out.append(self.delta(d.text))
            elif kind == "refusal":
                if isinstance(d.value, Mapping) and d.value.get("stop_details") is not None:
                    self._stop_details = d.value["stop_details"]  # this API's own refusal: metadata
                elif d.text:
                    out.append(self.delta(d.text))  # another API's refusal message: text
            elif kind == "thinking" or kind == "signature":
                if self._kind != "thinking" or self._source != d.index:
                    out.append(self._open("thinking", _THINKING_BLOCK, d.index))
                if kind == "signature":
                    out.append(self._delta({"type": "signature_delta", "signature": d.text}))
                elif d.text:
                    out.append(self._delta({"type": "thinking_delta", "thinking": d.text}))
            elif kind == "tool_call":
                block = {"type": "tool_use", "id": d.id, "name": d.name, "input": {}}
                out.append(self._open("tool_use", block, d.index))
            elif kind == "tool_arguments":
                if self._kind == "tool_use" and self._source == d.index and d.text:
                    out.append(self._delta({"type": "input_json_delta", "partial_json": d.text}))
            elif kind == "redacted_thinking":
                block = {"type": "redacted_thinking", "data": d.text}
                out.append(self._open("redacted_thinking", block, d.index))
            elif kind == "block" and isinstance(d.value, Mapping):
                out.append(self._open("block", d.value, d.index))
        return b"".join(out)

    def finish(self, finish_reason: str | None, usage: TokenUsage, stop_sequence: str | None = None) -> bytes:
        wire = usage_to_wire(usage)
        delta = {
            "stop_reason": FROM_NEUTRAL.get(finish_reason or "stop", "end_turn"),
            "stop_sequence": stop_sequence,
            "stop_details": self._stop_details,
        }
        cumulative = {k: wire[k] for k in _CUMULATIVE}
        if usage.reasoning_tokens:
            cumulative["output_tokens_details"] = wire["output_tokens_details"]
        return (
            self._close()
            + _event("message_delta", {"type": "message_delta", "delta": delta, "usage": cumulative})
            + _MESSAGE_STOP
        )

    @staticmethod
    def error(status: int, message: str, type: str | None = None) -> bytes:
        return _event("error", error_body(status, message, type))


def render_stream(
    *, id: str, model: str, pieces: Iterable[str], finish_reason: str | None, usage: TokenUsage
) -> Iterator[bytes]:
    """Every frame of a complete stream, for callers that have the whole reply at hand."""
    writer = StreamWriter(id, model, usage)
    yield writer.start()
    for piece in pieces:
        yield writer.delta(piece)
    yield writer.finish(finish_reason, usage)
