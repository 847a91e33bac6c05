"""The server side of the OpenAI Chat Completions API: what the simulator and the gateway speak.

Part of ``wire.openai`` (import it from there): validating request bodies
(``parse_request``) and writing replies, error bodies and SSE chunks
(``render_*``, ``error_body``, ``StreamWriter``). The neutral → wire vocabulary
lives here with its one user: ``ERROR_TYPES``, ``FROM_NEUTRAL``,
``usage_to_wire``, ``DONE``. Its wire → neutral counterparts (``TO_NEUTRAL``,
``usage_from_wire``) sit beside the client side in ``openai.py``, which
re-exports everything defined here.
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
    message_text,
    optional_bool,
    optional_temperature,
    positive_int,
    require_model,
    require_object,
    stop_list,
)

__all__ = [
    "DONE",
    "ERROR_TYPES",
    "FROM_NEUTRAL",
    "StreamWriter",
    "error_body",
    "parse_request",
    "render_models",
    "render_response",
    "render_stream",
    "usage_to_wire",
]

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

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
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
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# ---------------------------------------------------------------- requests


def _parse_messages(value: Any) -> tuple[str | None, list[Message]]:
    """Leading system/developer messages become ``system``; later ones stay in place."""
    if not isinstance(value, list) or not value:
        raise RequestFieldError("messages: field required (a non-empty list)", "messages")
    system: list[str] = []
    out: list[Message] = []
    for i, msg in enumerate(value):
        if not isinstance(msg, Mapping):
            raise RequestFieldError(f"messages[{i}]: must be an object with role and content", "messages")
        role = _ROLES.get(msg.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise RequestFieldError(
                f"messages[{i}].role: must be system, developer, user or assistant; got {msg.get('role')!r}",
                "messages",
            )
        check_content(f"messages[{i}]", msg.get("content"))
        if role == "system" and not out:
            system.append(message_text(msg["content"]))
        else:
            out.append({"role": role, "content": msg["content"]})
    if not out:
        raise RequestFieldError("messages: at least one user or assistant message is required", "messages")
    return ("\n\n".join(system) or None), out


def parse_request(body: Any) -> tuple[GenerationRequest, RequestOptions]:
    """Validate a ``POST /v1/chat/completions`` body as the API does; errors name the field.

    Either ``max_completion_tokens`` or the deprecated ``max_tokens`` is accepted;
    both at once is the API's 400 ``invalid_parameter_combination`` (rule 12).
    Neither means the library default (1024).
    """
    body = require_object(body)
    model = require_model(body)
    system, messages = _parse_messages(body.get("messages"))
    has_mct = body.get("max_completion_tokens") is not None
    has_mt = body.get("max_tokens") is not None
    if has_mct and has_mt:
        raise RequestFieldError(
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.",
            "max_tokens",
            "invalid_parameter_combination",
        )
    extra: dict[str, Any] = {k: v for k, v in body.items() if k not in _REQUEST_KEYS}
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
    request = GenerationRequest(
        messages=messages,
        system=system,
        temperature=optional_temperature(body, 2.0),
        stop=stop_list("stop", body.get("stop"), 4),
        **kwargs,
    )
    return request, RequestOptions(model=model, stream=stream, include_usage=include_usage, extra=extra)


# ---------------------------------------------------------------- replies


def render_models(
    model_ids: Iterable[str], created: int = 1735689600, owned_by: str = "system"
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": owned_by} for m in model_ids],
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
) -> dict[str, Any]:
    """A plain ``chat.completion`` reply, field for field as the API sends it."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": FROM_NEUTRAL.get(finish_reason or "stop", "stop"),
            }
        ],
        "usage": usage_to_wire(usage),
        "service_tier": "default",
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

    ``start()`` the role chunk; ``delta(text)`` one content chunk; ``finish()``
    the finish chunk, the usage chunk (``choices: []``, only with
    ``include_usage``) and ``data: [DONE]``; ``error()`` an in-stream error
    payload (vLLM's shape: integer ``code``) followed by ``[DONE]``.
    """

    __slots__ = ("_head", "_tail", "include_usage")

    def __init__(
        self, id: str, model: str, created: int, include_usage: bool, system_fingerprint: str | None = None
    ) -> None:
        self.include_usage = include_usage
        head = orjson.dumps(
            {
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": system_fingerprint,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":'
        self._tail = (b',"usage":null' if include_usage else b"") + b"}\n\n"

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

    def start(self) -> bytes:
        return self._chunk(b'{"role":"assistant","content":"","refusal":null}')

    def delta(self, text: str) -> bytes:
        return self._chunk(b'{"content":' + orjson.dumps(text) + b"}")

    def finish(self, finish_reason: str | None, usage: TokenUsage) -> bytes:
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
