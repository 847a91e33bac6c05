"""The Anthropic Messages API on the wire: the one module to import for both sides of it.

Client side (providers)::

    build_request(request, model, *, stream) -> dict        # what the official SDK sends
    parse_response(body) -> ParsedResponse                   # text, neutral finish, our usage
    StreamParser(provider=None).feed(event) -> str | None    # text delta per SSE event
                               .finish() -> ParsedResponse   # or StreamInterruptedError

Server side (simulator, gateway; defined in ``_anthropic_server``, re-exported here)::

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

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from .._errors import StreamInterruptedError
from .._types import GenerationRequest, Message, TokenUsage
from ._anthropic_server import (
    ERROR_TYPES,
    FROM_NEUTRAL,
    StreamWriter,
    error_body,
    error_type_for_status,
    parse_count_tokens_request,
    parse_request,
    render_count_tokens,
    render_models,
    render_response,
    render_stream,
    usage_to_wire,
)
from ._common import (
    ParsedResponse,
    RequestFieldError,
    RequestOptions,
    count,
    counted_usage,
    message_text,
)
from .sse import ServerSentEvent

__all__ = [
    "ERROR_TYPES",
    "FROM_NEUTRAL",
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

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


# ---------------------------------------------------------------- usage and finish (wire → neutral)


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
