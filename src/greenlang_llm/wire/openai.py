"""The OpenAI Chat Completions API on the wire: the one module to import for both sides of it.

Client side (providers)::

    build_request(request, model, *, stream) -> dict        # what the official SDK sends
    parse_response(body) -> ParsedResponse                   # text, neutral finish, our usage
    StreamParser(provider=None).feed(event) -> str | None    # text delta per SSE event
                               .finish() -> ParsedResponse   # or StreamInterruptedError

Server side (simulator, gateway; defined in ``_openai_server``, re-exported here)::

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

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from .._errors import StreamInterruptedError
from .._types import GenerationRequest, Message, TokenUsage
from ._common import (
    ParsedResponse,
    RequestFieldError,
    RequestOptions,
    count,
    counted_usage,
    message_text,
)
from ._openai_server import (
    DONE,
    ERROR_TYPES,
    FROM_NEUTRAL,
    StreamWriter,
    error_body,
    parse_request,
    render_models,
    render_response,
    render_stream,
    usage_to_wire,
)
from .sse import ServerSentEvent

__all__ = [
    "DONE",
    "ERROR_TYPES",
    "FROM_NEUTRAL",
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

TO_NEUTRAL: dict[str, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
"""OpenAI ``finish_reason`` → neutral. Anything else (``error``, ``abort``) is not a finish."""


# ---------------------------------------------------------------- usage (wire → neutral)


def usage_from_wire(raw: Mapping[str, Any] | None) -> TokenUsage:
    """OpenAI usage → ours; ``cached_tokens`` (and 3.x ``cache_write_tokens``) are subsets (rule 10)."""
    raw = raw or {}
    details = raw.get("prompt_tokens_details")
    details = details if type(details) is dict or isinstance(details, Mapping) else {}
    prompt = count(raw.get("prompt_tokens"))
    read = min(count(details.get("cached_tokens")), prompt)
    write = min(count(details.get("cache_write_tokens")), prompt - read)
    return counted_usage(prompt, count(raw.get("completion_tokens")), read, write)


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
