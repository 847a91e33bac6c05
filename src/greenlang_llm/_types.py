"""The provider-neutral request and response types every layer speaks.

Token semantics are the same whichever provider answered, so a ledger can add
them up: ``input_tokens`` counts *all* prompt tokens, cached ones included
(OpenAI's ``prompt_tokens``; Anthropic's ``input_tokens + cache_creation +
cache_read``). ``cache_read_tokens`` and ``cache_write_tokens`` are subsets of
it, priced at their own rates. Costs are floats at this edge only; pricing and
the ledger compute them exactly (see ``pricing.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidRequestError

__all__ = [
    "GenerationRequest",
    "GenerationResponse",
    "Message",
    "ProviderHealth",
    "SplitUsage",
    "StreamChunk",
    "TokenUsage",
    "UsagePart",
]

Message = dict[str, Any]
"""``{"role": "user" | "assistant" | "system", "content": str | list[block]}``."""

_ROLES = frozenset({"user", "assistant", "system"})


def _check_content(index: int, content: Any) -> None:
    if isinstance(content, str):
        return
    if isinstance(content, list) and content:
        for block in content:
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise InvalidRequestError(
                    f"messages[{index}].content: every block must be an object with a 'type'"
                )
        return
    raise InvalidRequestError(
        f"messages[{index}].content must be a string or a non-empty list of blocks, "
        f"got {type(content).__name__}"
    )


@dataclass(slots=True)
class GenerationRequest:
    """One generation, before it is mapped to any provider's wire format.

    ``prompt`` is shorthand for a single user message. Validation happens here,
    so a bad request fails before any network call.
    """

    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int = 1024
    stop: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    """Deadline in seconds for the whole call: retries, failovers, continuations."""

    def __post_init__(self) -> None:
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise InvalidRequestError(f"prompt must be a string, got {type(self.prompt).__name__}")
        if self.messages is not None:
            if isinstance(self.messages, str | bytes) or not isinstance(self.messages, Sequence):
                raise InvalidRequestError("messages must be a list of {role, content} objects")
            self.messages = list(self.messages)
            for i, msg in enumerate(self.messages):
                if not isinstance(msg, Mapping):
                    raise InvalidRequestError(f"messages[{i}] must be an object with role and content")
                if msg.get("role") not in _ROLES:
                    raise InvalidRequestError(
                        f"messages[{i}].role must be one of user, assistant, system; "
                        f"got {msg.get('role')!r}"
                    )
                _check_content(i, msg.get("content"))
        has_prompt = bool(self.prompt and self.prompt.strip())
        if not has_prompt and not self.messages:
            raise InvalidRequestError("prompt or messages is required (both are empty)")
        if self.system is not None and not isinstance(self.system, str):
            raise InvalidRequestError(f"system must be a string, got {type(self.system).__name__}")
        if self.temperature is not None:
            if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
                raise InvalidRequestError(
                    f"temperature must be a number, got {type(self.temperature).__name__}"
                )
            if not (0.0 <= self.temperature <= 2.0):
                raise InvalidRequestError(f"temperature must be between 0 and 2, got {self.temperature}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise InvalidRequestError(f"max_tokens must be an integer, got {type(self.max_tokens).__name__}")
        if self.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.stop is not None:
            if isinstance(self.stop, str):
                self.stop = [self.stop]
            if not isinstance(self.stop, list) or not all(isinstance(s, str) for s in self.stop):
                raise InvalidRequestError("stop must be a string or a list of strings")
        if not isinstance(self.metadata, dict):
            raise InvalidRequestError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not self.timeout > 0
        ):
            raise InvalidRequestError(f"timeout must be a positive number of seconds, got {self.timeout!r}")

    def to_messages(self) -> list[Message]:
        """The conversation as a list, with ``prompt`` appended as the last user turn."""
        out = list(self.messages or [])
        if self.prompt and self.prompt.strip():  # a blank prompt next to messages adds no turn
            out.append({"role": "user", "content": self.prompt})
        return out


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise InvalidRequestError(f"{name} must not be negative, got {value}")


def _check_money(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(f"{name} must be a finite non-negative number, got {value}")


@dataclass(slots=True)
class TokenUsage:
    """Tokens and their cost for one call; see the module docstring for semantics."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_cost_usd: float = 0.0
    output_cost_usd: float = 0.0
    total_cost_usd: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False
    """True when the tokens were counted locally because the provider reported none."""

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "total_tokens",
                     "cache_read_tokens", "cache_write_tokens"):
            _check_count(name, getattr(self, name))
        for name in ("input_cost_usd", "output_cost_usd", "total_cost_usd"):
            _check_money(name, getattr(self, name))
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise InvalidRequestError(
                "cache_read_tokens + cache_write_tokens must not exceed input_tokens "
                "(input_tokens counts every prompt token, cached ones included)"
            )

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens


@dataclass(slots=True)
class GenerationResponse:
    """A complete answer: text, who produced it, usage with costs, and why it stopped."""

    text: str
    provider: str
    model_id: str
    usage: TokenUsage
    finish_reason: str | None = None
    latency_ms: float = 0.0
    raw: dict[str, Any] | None = None


@dataclass(slots=True)
class StreamChunk:
    """One piece of a stream: ``text`` is the new delta; the last chunk carries usage."""

    text: str
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    provider: str | None = None
    model_id: str | None = None


@dataclass(slots=True)
class ProviderHealth:
    """The result of a health probe; ``last_error`` says why it is unhealthy."""

    is_healthy: bool
    latency_ms: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class UsagePart:
    """One upstream call's share of an answer: who produced it and what it cost."""

    provider: str
    model_id: str
    usage: TokenUsage


@dataclass(slots=True)
class SplitUsage(TokenUsage):
    """The sum over several upstream calls, with ``parts`` naming each call (oldest first)."""

    parts: tuple[UsagePart, ...] = field(default=())
