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
from .content import (
    REASONING_EFFORTS,
    Block,
    Delta,
    Reasoning,
    ResponseFormat,
    ToolChoice,
    ToolDefinition,
    WireOrigin,
    normalize_messages,
    tool_calls_of,
)

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
"""``{"role": "user" | "assistant" | "system", "content": str | list[block]}``; blocks in the
neutral vocabulary of ``content.py`` (either API's native blocks, OpenAI ``tool`` messages and
assistant ``tool_calls`` are accepted and normalised)."""

_ROLES = frozenset({"user", "assistant", "system"})
_INPUT_ROLES = frozenset({"user", "assistant", "system", "tool"})


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

    Beyond text (all optional, all neutral; ``wire/`` translates them per API and
    ``docs/fields.md`` says what each provider does with each): ``tools``, ``tool_choice``,
    ``parallel_tool_calls``, ``response_format``, sampling (``top_p``, ``top_k``, ``seed``,
    ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``logprobs``,
    ``top_logprobs``, ``n``), ``user``, ``reasoning``, ``service_tier``. ``extra`` is sent
    verbatim in every provider's body. A field a provider cannot honour is either dropped
    (a hint such as ``seed``: the response's ``dropped_params`` names it) or makes that
    provider unable to serve the request (tools, images, ...): the router skips it, and
    raises ``UnsupportedParamsError`` when no provider can. ``drop_params=False`` refuses
    the hints too. ``origin`` is the caller's own body (set by the gateway), which a
    provider of the same API forwards unchanged.
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
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    n: int | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    service_tier: str | None = None
    extra: dict[str, Any] | None = None
    drop_params: bool = True
    origin: WireOrigin | None = None
    rich: bool = field(default=False, init=False, repr=False, compare=False)
    """Anything beyond plain text is set (a field above, a content block list, or fields of the
    caller's body no neutral field covers): providers are asked whether they can serve it. False
    on the plain-text hot path, which skips that (a caller's body its parser found plain,
    ``origin.plain``, does not make a request rich: its fields translate to any API)."""

    def __post_init__(self) -> None:
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise InvalidRequestError(f"prompt must be a string, got {type(self.prompt).__name__}")
        rich = False
        if self.messages is not None:
            if isinstance(self.messages, str | bytes) or not isinstance(self.messages, Sequence):
                raise InvalidRequestError("messages must be a list of {role, content} objects")
            self.messages = list(self.messages)
            normalize = False
            for i, msg in enumerate(self.messages):
                if not isinstance(msg, Mapping):
                    raise InvalidRequestError(f"messages[{i}] must be an object with role and content")
                role = msg.get("role")
                if role not in _ROLES:
                    if role not in _INPUT_ROLES:
                        raise InvalidRequestError(
                            f"messages[{i}].role must be one of user, assistant, system, tool; "
                            f"got {role!r}"
                        )
                    normalize = True
                    continue
                content = msg.get("content")
                if type(content) is str:
                    if "tool_calls" in msg:
                        normalize = True
                    continue
                if role == "assistant" and msg.get("tool_calls") and content in (None, "", []):
                    normalize = True
                    continue
                _check_content(i, content)
                normalize = True
            if normalize:
                self.messages = normalize_messages(self.messages)
                rich = True
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
        if (
            self.tools is not None or self.tool_choice is not None or self.parallel_tool_calls is not None
            or self.response_format is not None or self.top_p is not None or self.top_k is not None
            or self.seed is not None or self.presence_penalty is not None
            or self.frequency_penalty is not None or self.logit_bias is not None
            or self.logprobs is not None or self.top_logprobs is not None or self.n is not None
            or self.user is not None or self.reasoning is not None or self.service_tier is not None
            or self.extra or (self.origin is not None and not self.origin.plain)
        ):
            _check_rich(self)
            rich = True
        self.rich = rich

    @property
    def max_output_tokens(self) -> int:
        """The most output tokens this request can be billed: ``max_tokens`` per answer, ``n`` answers."""
        return self.max_tokens * self.n if self.n else self.max_tokens

    def to_messages(self) -> list[Message]:
        """The conversation as a list, with ``prompt`` appended as the last user turn."""
        out = list(self.messages or [])
        if self.prompt and self.prompt.strip():  # a blank prompt next to messages adds no turn
            out.append({"role": "user", "content": self.prompt})
        return out


MAX_ANSWERS = 128
"""The most answers (``n``) one request may ask for: OpenAI's own limit."""


def _number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequestError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low:g} and {high:g}, got {value}")


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise InvalidRequestError(f"{name} must be at least {low}, got {value}")


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list of tool definitions")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise InvalidRequestError(f"tools[{i}] must be an object")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"tools[{i}].name must be a non-empty string")
        if name in names:
            raise InvalidRequestError(f"tools[{i}].name {name!r} is used twice")
        names.add(name)
        if "type" in tool:
            continue  # an API's own tool kind, kept as it came
        if not isinstance(tool.get("parameters"), Mapping):
            raise InvalidRequestError(f"tools[{i}].parameters must be a JSON Schema object")


def _check_rich(r: GenerationRequest) -> None:
    """The fields beyond text, checked only when one is set (the plain hot path skips this)."""
    if r.tools is not None:
        _check_tools(r.tools)
    choice = r.tool_choice
    if choice is not None and not r.tools:
        raise InvalidRequestError("tool_choice is only allowed when tools are given")
    if choice is not None:
        if isinstance(choice, str):
            if choice not in ("auto", "none", "required"):
                raise InvalidRequestError(
                    f"tool_choice must be auto, none, required or {{'name': ...}}, got {choice!r}")
        elif not isinstance(choice, Mapping) or not isinstance(choice.get("name"), str):
            raise InvalidRequestError("tool_choice must be auto, none, required or {'name': <tool name>}")
        elif not r.tools or all(t.get("name") != choice["name"] for t in r.tools):
            raise InvalidRequestError(f"tool_choice names {choice['name']!r}, which is not in tools")
    if r.parallel_tool_calls is not None and not isinstance(r.parallel_tool_calls, bool):
        raise InvalidRequestError("parallel_tool_calls must be a boolean")
    fmt = r.response_format
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind == "json_schema":
            if not isinstance(fmt.get("schema"), Mapping):
                raise InvalidRequestError("response_format.schema must be a JSON Schema object")
        elif kind != "json_object":
            raise InvalidRequestError(
                f"response_format.type must be json_schema or json_object, got {kind!r}")
    if r.top_p is not None:
        _number("top_p", r.top_p, 0.0, 1.0)
    if r.top_k is not None:
        _integer("top_k", r.top_k, 1)
    if r.seed is not None:
        _integer("seed", r.seed, -(2**63))
    if r.presence_penalty is not None:
        _number("presence_penalty", r.presence_penalty, -2.0, 2.0)
    if r.frequency_penalty is not None:
        _number("frequency_penalty", r.frequency_penalty, -2.0, 2.0)
    if r.logit_bias is not None and not isinstance(r.logit_bias, Mapping):
        raise InvalidRequestError("logit_bias must map token ids to biases")
    if r.logprobs is not None and not isinstance(r.logprobs, bool):
        raise InvalidRequestError("logprobs must be a boolean")
    if r.top_logprobs is not None:
        _integer("top_logprobs", r.top_logprobs, 0)
    if r.n is not None:
        _integer("n", r.n, 1)
        if r.n > MAX_ANSWERS:
            raise InvalidRequestError(f"n must be at most {MAX_ANSWERS}, got {r.n}")
    if r.user is not None and not isinstance(r.user, str):
        raise InvalidRequestError("user must be a string")
    reasoning = r.reasoning
    if reasoning is not None:
        if not isinstance(reasoning, Mapping):
            raise InvalidRequestError(
                "reasoning must be an object: {'effort': ...} or {'budget_tokens': ...}")
        effort = reasoning.get("effort")
        if effort is not None and effort not in REASONING_EFFORTS:
            raise InvalidRequestError(f"reasoning.effort must be one of {', '.join(REASONING_EFFORTS)}")
        if reasoning.get("budget_tokens") is not None:
            _integer("reasoning.budget_tokens", reasoning["budget_tokens"], 0)
    if r.service_tier is not None and not isinstance(r.service_tier, str):
        raise InvalidRequestError("service_tier must be a string")
    if r.extra is not None and not isinstance(r.extra, dict):
        raise InvalidRequestError("extra must be a dict of fields to send verbatim")


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
    reasoning_tokens: int = 0
    """Of ``output_tokens``, those the model spent thinking (billed as output, as the providers do)."""

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "total_tokens",
                     "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
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
    """A complete answer: text, who produced it, usage with costs, and why it stopped.

    ``content`` is the whole answer in order, as neutral blocks (thinking, text, tool calls);
    None when it is text only. ``raw`` is the provider's body as received, in the wire API
    ``api`` names; ``dropped_params`` the request's hints this provider could not honour.
    """

    text: str
    provider: str
    model_id: str
    usage: TokenUsage
    finish_reason: str | None = None
    latency_ms: float = 0.0
    raw: dict[str, Any] | None = None
    content: list[Block] | None = None
    refusal: str | None = None
    logprobs: Any = None
    dropped_params: tuple[str, ...] = ()
    api: str | None = None

    @property
    def tool_calls(self) -> list[Block]:
        """The answer's ``tool_call`` blocks (id, name, JSON arguments), in order."""
        return tool_calls_of(self.content)

    @property
    def thinking(self) -> list[Block]:
        """The answer's ``thinking`` and ``redacted_thinking`` blocks, in order."""
        return [b for b in self.content or () if b.get("type") in ("thinking", "redacted_thinking")]


@dataclass(slots=True)
class StreamChunk:
    """One piece of a stream: ``text`` is the new delta; the last chunk carries usage.

    ``deltas`` is empty for plain text; otherwise it holds every piece of this chunk in order
    (thinking, tool-call openings and arguments, and the text among them: ``text`` is still
    the concatenation of the text ones, so text-only consumers need not look).
    """

    text: str
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    provider: str | None = None
    model_id: str | None = None
    deltas: tuple[Delta, ...] = ()
    dropped_params: tuple[str, ...] = ()
    """On the last chunk: the request's hints the provider left out (as ``GenerationResponse``)."""
    stop_sequence: str | None = None
    """On the last chunk: the stop sequence that ended the answer, when one did."""


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
