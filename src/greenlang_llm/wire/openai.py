"""The OpenAI Chat Completions API on the wire, both sides of it, in one module.

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

    parse_request(body) -> (GenerationRequest, RequestOptions)   # RequestFieldError(.param, .code)
    render_response(id=, model=, text=, finish_reason=, usage=, created=) -> dict
    StreamWriter(id, model, created, include_usage).start() / .delta(t) / .finish(r, u) / .error(...)
    error_body(status, message, type=None, code=None, param=None) -> dict;  ERROR_TYPES
    usage_to_wire(usage) / usage_from_wire(dict);  TO_NEUTRAL / FROM_NEUTRAL finish maps

Why the care (see tests/wire/fixtures/README.md): ``prompt_tokens``
*includes* ``cached_tokens`` like ours (rule 10); only ``max_completion_tokens``
is sent, since both fields together are a 400 (rule 12); usage arrives in a
stream only with ``include_usage``, in a chunk whose ``choices`` is empty
(rule 13); an ``error`` payload inside a 200 stream is a failure even if
``[DONE]`` follows, and a stream without a ``finish_reason`` is incomplete
(rule 15).
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
    "parse_request",
    "parse_response",
    "render_models",
    "render_response",
    "render_stream",
    "usage_from_wire",
    "usage_to_wire",
]


# ---------------------------------------------------------------- vocabulary

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

HINT_FIELDS: frozenset[str] = frozenset(
    {
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "service_tier",
        "store",
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "verbosity",
        "prediction",
    }
)
"""OpenAI request fields that are hints (docs/fields.md): a provider of another API drops them
(``x-greenlang-dropped-params``) instead of refusing the request. The non-neutral ones among them
(``store``, ``metadata``, ...) are in ``GenerationRequest.origin.unknown`` like every other field
no neutral field covers; another API's ``fit`` looks names up here before refusing them."""

MEANING_FIELDS: frozenset[str] = frozenset(
    {"modalities", "audio", "web_search_options", "functions", "function_call"}
)
"""OpenAI request fields known to carry meaning that no neutral field covers: refused by a provider
of another API (as every unknown field is; listed so the refusal can say why). ``modalities`` is
only in ``origin.unknown`` when it asks for more than ``["text"]``."""

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


# ---------------------------------------------------------------- usage


def usage_from_wire(raw: Mapping[str, Any] | None) -> TokenUsage:
    """OpenAI usage → ours; ``cached_tokens`` (and 3.x ``cache_write_tokens``) are subsets (rule 10)."""
    raw = raw or {}
    details = raw.get("prompt_tokens_details")
    details = details if type(details) is dict or isinstance(details, Mapping) else {}
    prompt = count(raw.get("prompt_tokens"))
    read = min(count(details.get("cached_tokens")), prompt)
    write = min(count(details.get("cache_write_tokens")), prompt - read)
    return counted_usage(prompt, count(raw.get("completion_tokens")), read, write)


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


# ---------------------------------------------------------------- client side


def build_request(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body the official SDK would send: system first, ``max_completion_tokens`` only."""
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


def _first_choice(body: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = body.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            # ``type(x) is dict`` first: what orjson gives, without the ABC check (hot path)
            if (type(choice) is dict or isinstance(choice, Mapping)) and choice.get("index", 0) == 0:
                return choice
    return {}


def parse_response(body: Mapping[str, Any]) -> ParsedResponse:
    """A plain ``POST /chat/completions`` reply (first choice; ``choices`` may be empty)."""
    choice = _first_choice(body)
    message = choice.get("message")
    text = (
        message_text(message.get("content")) if type(message) is dict or isinstance(message, Mapping) else ""
    )
    reason = choice.get("finish_reason")
    raw_usage = body.get("usage")
    return ParsedResponse(
        text=text,
        finish_reason=TO_NEUTRAL.get(reason, reason) if isinstance(reason, str) else None,
        usage=usage_from_wire(raw_usage)
        if type(raw_usage) is dict or isinstance(raw_usage, Mapping)
        else None,
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        native_finish_reason=reason if isinstance(reason, str) else None,
    )


class StreamParser:
    """Accumulates one OpenAI-style SSE stream; ``feed`` returns each text delta.

    ``finish()`` raises ``StreamInterruptedError`` (with the text so far) when no
    ``finish_reason`` came, when it is non-standard (``error``, ``abort``), or —
    with ``require_done`` (default) — when ``data: [DONE]`` never came. An
    ``{"error": ...}`` payload or invalid JSON raises from ``feed`` at once.
    """

    __slots__ = (
        "_parts",
        "_usage",
        "done",
        "id",
        "model",
        "native_finish_reason",
        "provider",
        "require_done",
    )

    def __init__(self, provider: str | None = None, *, require_done: bool = True) -> None:
        self.provider = provider
        self.require_done = require_done
        self._parts: list[str] = []
        self._usage: Mapping[str, Any] | None = None
        self.id = ""
        self.model = ""
        self.native_finish_reason: str | None = None
        self.done = False

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

    def feed(self, event: ServerSentEvent) -> str | None:
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
        choice = _first_choice(data)
        if not choice:
            return None  # the usage chunk, or a chunk for another choice
        if choice.get("finish_reason"):
            self.native_finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta")
        content = delta.get("content") if type(delta) is dict or isinstance(delta, Mapping) else None
        if type(content) is str and content:
            self._parts.append(content)
            return content
        return None

    def finish(self) -> ParsedResponse:
        """Call when the byte stream ended; raises if it is incomplete (see the class docstring)."""
        reason = self.native_finish_reason
        if reason is None:
            self._interrupted("stream ended without a finish_reason")
        if reason not in TO_NEUTRAL:
            self._interrupted(f"stream finished with {reason!r}")
        if self.require_done and not self.done:
            self._interrupted("stream ended before data: [DONE]")
        return ParsedResponse(
            text=self.text,
            finish_reason=self.finish_reason,
            usage=self.usage,
            id=self.id,
            model=self.model,
            native_finish_reason=reason,
        )


# ---------------------------------------------------------------- server side: requests


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


# ---------------------------------------------------------------- server side: replies


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

