"""The server side of the Anthropic Messages API: what the simulator and the gateway speak.

Part of ``wire.anthropic`` (import it from there): validating request bodies
(``parse_request``, ``parse_count_tokens_request``) and writing replies, error
bodies and SSE frames (``render_*``, ``error_body``, ``StreamWriter``). The
neutral → wire vocabulary lives here with its one user: ``ERROR_TYPES``,
``FROM_NEUTRAL``, ``usage_to_wire``. Its wire → neutral counterparts
(``TO_NEUTRAL``, ``STATUS_BY_TYPE``, ``usage_from_wire``) sit beside the client
side in ``anthropic.py``, which re-exports everything defined here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from .._types import GenerationRequest, Message, TokenUsage
from ._common import (
    RequestFieldError,
    RequestOptions,
    check_content,
    optional_bool,
    optional_temperature,
    positive_int,
    require_model,
    require_object,
    stop_list,
)
from .sse import encode_event

__all__ = [
    "ERROR_TYPES",
    "FROM_NEUTRAL",
    "StreamWriter",
    "error_body",
    "error_type_for_status",
    "parse_count_tokens_request",
    "parse_request",
    "render_count_tokens",
    "render_models",
    "render_response",
    "render_stream",
    "usage_to_wire",
]

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

_REQUEST_KEYS = frozenset(
    {"model", "messages", "max_tokens", "system", "temperature", "stop_sequences", "stream"}
)


def error_type_for_status(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


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


# ---------------------------------------------------------------- requests


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


# ---------------------------------------------------------------- replies


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
