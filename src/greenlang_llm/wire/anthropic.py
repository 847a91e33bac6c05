"""The Anthropic Messages API on the wire, both sides of it, in one module.

The providers speak the client side, the simulator and the gateway the server
side; keeping them together keeps each mapping beside its inverse (``TO_NEUTRAL``
/ ``FROM_NEUTRAL``, ``usage_from_wire`` / ``usage_to_wire``), so a change to the
API's shape is made, and tested, in one place.

Client side (providers)::

    build_request(request, model, *, stream) -> dict        # what the official SDK sends
    parse_response(body) -> ParsedResponse                   # text, neutral finish, our usage
    StreamParser(provider=None).feed(event) -> str | None    # text delta per SSE event
                               .finish() -> ParsedResponse   # or StreamInterruptedError

Server side (simulator, gateway)::

    parse_request(body) -> (GenerationRequest, RequestOptions)   # InvalidRequestError names the field
    parse_count_tokens_request(body) -> (GenerationRequest, model)
    render_response(id=, model=, text=, finish_reason=, usage=) -> dict
    StreamWriter(id, model, usage).start() / .delta(text) / .finish(reason, usage) / .error(status, msg)
    error_body(status, message, type=None) -> dict;  ERROR_TYPES / STATUS_BY_TYPE
    usage_to_wire(usage) / usage_from_wire(dict);  TO_NEUTRAL / FROM_NEUTRAL finish maps

Why the care (see tests/wire/fixtures/README.md): Anthropic's
``input_tokens`` *excludes* cache tokens while ours include them (rule 9);
``message_delta.usage`` is cumulative, so it replaces rather than adds (rule 8);
a stream is complete only when ``message_stop`` arrives, ``event: error`` ends
it inside an HTTP 200, ``ping`` and unknown events are skipped and data JSON may
be padded with spaces (rule 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn

import orjson

from .._errors import StreamInterruptedError
from .._types import GenerationRequest, Message, TokenUsage
from ._common import (
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
from .sse import ServerSentEvent, encode_event

__all__ = [
    "ERROR_TYPES",
    "FROM_NEUTRAL",
    "HINT_FIELDS",
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

HINT_FIELDS: frozenset[str] = frozenset({"service_tier", "inference_geo", "cache_control"})
"""Top-level Anthropic request fields that are hints: a provider of another API drops them (and
says so). They stay in ``WireOrigin.unknown``; top-level ``cache_control`` is the prompt-cache
marker, like the block-level one the field table lists as dropped."""

MEANING_FIELDS: frozenset[str] = frozenset({"container", "mcp_servers", "context_management"})
"""Top-level Anthropic request fields that carry meaning no other API can express: a provider of
another API refuses them (as it refuses any other field in ``WireOrigin.unknown``)."""

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})

_REQUEST_KEYS = frozenset(
    {"model", "messages", "max_tokens", "system", "temperature", "stop_sequences", "stream"}
)


# ---------------------------------------------------------------- usage, finish and error types


def usage_from_wire(raw: Mapping[str, Any] | None) -> TokenUsage:
    """Anthropic usage → ours: input = input_tokens + cache writes + cache reads (rule 9)."""
    raw = raw or {}
    write = count(raw.get("cache_creation_input_tokens"))
    read = count(raw.get("cache_read_input_tokens"))
    return counted_usage(
        count(raw.get("input_tokens")) + write + read, count(raw.get("output_tokens")), read, write
    )


def _neutral(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return TO_NEUTRAL.get(stop_reason, stop_reason)


def usage_to_wire(u: TokenUsage) -> dict[str, Any]:
    """Ours → Anthropic's plain-response usage object (uncached input only in ``input_tokens``)."""
    return {
        "input_tokens": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_tokens, "ephemeral_1h_input_tokens": 0},
        "output_tokens": u.output_tokens,
        "service_tier": "standard",
    }


def error_type_for_status(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


# ---------------------------------------------------------------- client side


def build_request(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body the official SDK would send for ``request``.

    System-role messages are folded into ``system`` (the Messages API has no
    system role); ``temperature`` and ``stop_sequences`` are sent only when set,
    because API version 2026-10-21 rejects any ``temperature`` (rule 11).
    """
    system_parts = [request.system] if request.system else []
    messages: list[Message] = []
    for msg in request.to_messages():
        if msg["role"] == "system":
            text = message_text(msg["content"])
            if text:
                system_parts.append(text)
        else:
            messages.append({"role": msg["role"], "content": msg["content"]})
    body: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens, "messages": messages}
    if system_parts:
        body["system"] = "\n\n".join(system_parts)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    body["stream"] = stream
    return body


def parse_response(body: Mapping[str, Any]) -> ParsedResponse:
    """A plain ``POST /v1/messages`` reply; text is the concatenation of its text blocks."""
    content = body.get("content")
    text = message_text(content) if isinstance(content, list) else ""
    raw_usage = body.get("usage")
    stop_reason = body.get("stop_reason")
    stop_sequence = body.get("stop_sequence")
    return ParsedResponse(
        text=text,
        finish_reason=_neutral(stop_reason),
        usage=usage_from_wire(raw_usage) if isinstance(raw_usage, Mapping) else None,
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        native_finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


class StreamParser:
    """Accumulates one Anthropic SSE stream; ``feed`` returns each text delta.

    Raises ``StreamInterruptedError`` (with the text so far) on ``event: error``
    or invalid JSON, and from ``finish()`` if ``message_stop`` never came.
    Events after ``message_stop`` are ignored.
    """

    __slots__ = ("_parts", "_usage", "done", "id", "model", "provider", "stop_reason", "stop_sequence")

    def __init__(self, provider: str | None = None) -> None:
        self.provider = provider
        self._parts: list[str] = []
        self._usage: dict[str, Any] = {}
        self.id = ""
        self.model = ""
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.done = False

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

    def feed(self, event: ServerSentEvent) -> str | None:
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
            text = delta.get("text")
            if delta.get("type") == "text_delta" and isinstance(text, str) and text:
                self._parts.append(text)
                return text
        elif kind == "message_start":
            message = self._object(data, "message", kind)
            self.id = str(message.get("id") or "")
            self.model = str(message.get("model") or "")
            if isinstance(message.get("usage"), Mapping):
                self._usage = dict(message["usage"])
        elif kind == "content_block_start":
            block = self._object(data, "content_block", kind)
            text = block.get("text")
            if block.get("type") == "text" and isinstance(text, str) and text:
                self._parts.append(text)
                return text
        elif kind == "message_delta":
            delta = self._object(data, "delta", kind)
            reason, sequence = delta.get("stop_reason"), delta.get("stop_sequence")
            self.stop_reason = reason if isinstance(reason, str) and reason else self.stop_reason
            self.stop_sequence = sequence if isinstance(sequence, str) and sequence else self.stop_sequence
            if isinstance(data.get("usage"), Mapping):  # cumulative: replace, never add (rule 8)
                self._usage.update({k: v for k, v in data["usage"].items() if v is not None})
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
        return None  # ping, content_block_stop, unknown events

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
        check_content(f"messages.{i}", msg.get("content"))
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def parse_request(body: Any) -> tuple[GenerationRequest, RequestOptions]:
    """Validate a ``POST /v1/messages`` body as the API does; errors name the field."""
    body = require_object(body)
    model = require_model(body)
    if "max_tokens" not in body:
        raise RequestFieldError("max_tokens: field required", "max_tokens")
    max_tokens = positive_int("max_tokens", body["max_tokens"])
    messages = _parse_messages(body.get("messages"))
    request = GenerationRequest(
        messages=messages,
        system=_parse_system(body.get("system")),
        temperature=optional_temperature(body, 1.0),
        max_tokens=max_tokens,
        stop=stop_list("stop_sequences", body.get("stop_sequences"), 8191),
    )
    extra = {k: v for k, v in body.items() if k not in _REQUEST_KEYS}
    return request, RequestOptions(model=model, stream=optional_bool(body, "stream"), extra=extra)


def parse_count_tokens_request(body: Any) -> tuple[GenerationRequest, str]:
    """Validate a ``POST /v1/messages/count_tokens`` body (no ``max_tokens`` there)."""
    body = require_object(body)
    model = require_model(body)
    request = GenerationRequest(
        messages=_parse_messages(body.get("messages")), system=_parse_system(body.get("system"))
    )
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


def render_response(
    *,
    id: str,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: TokenUsage,
    stop_sequence: str | None = None,
) -> dict[str, Any]:
    """A plain ``POST /v1/messages`` reply, field for field as the API sends it."""
    return {
        "model": model,
        "id": id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
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
_BLOCK_START = _event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
_BLOCK_STOP = _event("content_block_stop", {"type": "content_block_stop", "index": 0})
_MESSAGE_STOP = _event("message_stop", {"type": "message_stop"})
_DELTA_HEAD = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)


class StreamWriter:
    """SSE byte frames of one streamed message, in the API's order.

    ``start()`` = message_start + content_block_start + ping; ``delta(text)`` one
    text_delta; ``finish()`` = content_block_stop + message_delta (cumulative
    usage) + message_stop; ``error()`` the in-stream ``event: error``.
    """

    __slots__ = ("id", "model", "usage")

    def __init__(self, id: str, model: str, usage: TokenUsage) -> None:
        self.id, self.model, self.usage = id, model, usage

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
        return _event("message_start", {"type": "message_start", "message": message}) + _BLOCK_START + _PING

    @staticmethod
    def delta(text: str) -> bytes:
        return _DELTA_HEAD + orjson.dumps(text) + b"}}\n\n"

    def finish(self, finish_reason: str | None, usage: TokenUsage, stop_sequence: str | None = None) -> bytes:
        wire = usage_to_wire(usage)
        delta = {
            "stop_reason": FROM_NEUTRAL.get(finish_reason or "stop", "end_turn"),
            "stop_sequence": stop_sequence,
            "stop_details": None,
        }
        cumulative = {
            k: wire[k]
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        }
        return (
            _BLOCK_STOP
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
