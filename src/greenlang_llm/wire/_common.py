"""Types and small validators shared by ``wire.anthropic`` and ``wire.openai``.

Both wire modules return the same neutral shapes so that a provider, the
gateway or the simulator can switch API without switching vocabulary:
``ParsedResponse`` (client side: what came back) and ``RequestOptions``
(server side: what the caller asked for beyond the ``GenerationRequest``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidRequestError
from .._types import GenerationRequest, TokenUsage
from ..content import Block

__all__ = [
    "Fit", "ParsedResponse", "RequestFieldError", "RequestOptions", "message_text", "usage",
]


class RequestFieldError(InvalidRequestError):
    """A request body failed validation; ``param`` names the field, ``code`` is the API's code.

    Servers render it with the API's own error shape (OpenAI puts both in
    ``error.param`` / ``error.code``).
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, status_code=400)
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """A complete (non-streamed) reply in neutral terms.

    ``finish_reason`` uses the neutral vocabulary (stop, stop_sequence, length,
    tool_calls, content_filter, pause); ``native_finish_reason`` keeps the API's
    own word for logs. ``usage`` follows ``TokenUsage`` semantics (input counts
    cached tokens too) with zero costs: pricing is not the wire's job.
    """

    text: str
    finish_reason: str | None
    usage: TokenUsage | None
    """None when the API reported no usage (an OpenAI stream without include_usage)."""
    id: str
    model: str
    native_finish_reason: str | None = None
    stop_sequence: str | None = None
    content: list[Block] | None = None
    """The whole answer in order as neutral blocks (thinking, text, tool calls); None when the
    answer is text only (``text`` says it all)."""
    refusal: str | None = None
    logprobs: Any = None


@dataclass(frozen=True, slots=True)
class Fit:
    """What a provider of one API does with a request's fields beyond text.

    ``dropped``: hints it cannot honour and leaves out (the answer means the same; the
    response names them in ``x-greenlang-dropped-params``). ``refused``: fields that carry
    meaning it cannot express, so it cannot serve the request at all (the router skips it).
    Names are the request's own field names (``seed``, ``tools``, ``messages[2].content[0]:
    input_audio``). With ``drop_params=False`` every hint is refused instead.
    """

    dropped: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @classmethod
    def of(cls, request: GenerationRequest, dropped: list[str], refused: list[str]) -> Fit:
        if not request.drop_params and dropped:
            return cls((), tuple(refused + dropped))
        return cls(tuple(dropped), tuple(refused))


FITS = Fit()
"""Serves it as asked: nothing dropped, nothing refused."""


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a server needs from an API request besides the ``GenerationRequest``.

    ``include_usage`` is OpenAI's ``stream_options.include_usage`` (always True
    for Anthropic, whose streams always carry usage). ``extra`` holds the top-level fields
    no neutral field covers (also in ``GenerationRequest.origin.unknown``: a provider of the
    same API forwards them with the caller's body).
    """

    model: str
    stream: bool = False
    include_usage: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def usage(input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0) -> TokenUsage:
    """A cost-free ``TokenUsage`` in our semantics (input includes the cache tokens)."""
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def counted_usage(
    input_tokens: int, output_tokens: int, cache_read: int, cache_write: int, reasoning: int = 0
) -> TokenUsage:
    """As :func:`usage`, for counts that already went through :func:`count` with
    ``cache_read + cache_write <= input_tokens``: skips ``TokenUsage``'s validation,
    which the provider's pricing then does not need to repeat (≈4 µs per call)."""
    built: TokenUsage = object.__new__(TokenUsage)
    built.input_tokens = input_tokens
    built.output_tokens = output_tokens
    built.total_tokens = input_tokens + output_tokens
    built.input_cost_usd = built.output_cost_usd = built.total_cost_usd = 0.0
    built.cache_read_tokens = cache_read
    built.cache_write_tokens = cache_write
    built.estimated = False
    built.reasoning_tokens = reasoning if reasoning <= output_tokens else output_tokens
    return built


def count(value: Any) -> int:
    """A token count from the wire: None or junk count as 0, never a crash."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text"
        )
    return ""


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise RequestFieldError("request body must be a JSON object")
    return body


def require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestFieldError("model: field required (a non-empty string)", "model")
    return model


def optional_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestFieldError(f"{name}: must be a boolean, got {type(value).__name__}", name)
    return value


def optional_temperature(body: Mapping[str, Any], upper: float) -> float | None:
    value = body.get("temperature")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestFieldError(f"temperature: must be a number, got {type(value).__name__}", "temperature")
    if not 0.0 <= value <= upper:
        raise RequestFieldError(f"temperature: must be between 0 and {upper:g}, got {value}", "temperature")
    return float(value)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestFieldError(f"{name}: must be an integer, got {type(value).__name__}", name)
    if value < 1:
        raise RequestFieldError(f"{name}: must be at least 1, got {value}", name)
    return value


def stop_list(name: str, value: Any, limit: int) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise RequestFieldError(f"{name}: must be a string or a list of non-empty strings", name)
    if len(value) > limit:
        raise RequestFieldError(f"{name}: at most {limit} entries, got {len(value)}", name)
    return list(value) or None


def check_content(where: str, content: Any) -> None:
    """A message content is a string or a non-empty list of typed blocks."""
    if isinstance(content, str):
        return
    if isinstance(content, list) and content:
        for i, block in enumerate(content):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise RequestFieldError(
                    f"{where}.content.{i}: every block must be an object with a 'type'", "messages"
                )
        return
    raise RequestFieldError(f"{where}.content: must be a string or a non-empty list of blocks", "messages")
