"""A scripted provider for tests and benchmarks: no network, no real time.

Each call takes the next step of ``script`` (cycling on ``default_text`` once it
runs out): a string is the reply, an exception instance is raised, and a
callable receives the request and returns either. Latency goes through the
injected ``sleep``, so tests stay instant. Usage is a documented function of
the request: input tokens = words in all messages and the system prompt (at
least 1), output tokens = words in the reply, priced at ``price_per_1k``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar

from .._errors import ProviderError, StreamInterruptedError
from .._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk, TokenUsage
from .base_provider import BaseLLMProvider

__all__ = ["FakeProvider"]

Step = str | BaseException | Callable[[GenerationRequest], "str | BaseException"]
_THOUSAND = Decimal(1000)


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(len(str(b.get("text", "")).split()) for b in content if isinstance(b, dict))
    return 0


class FakeProvider(BaseLLMProvider):
    """A provider that plays a script: replies, errors and latencies, with no network."""

    name: ClassVar[str] = "fake"

    def __init__(
        self,
        model_id: str = "fake-model",
        script: Iterable[Step] = (),
        *,
        default_text: str = "ok",
        latency: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = _no_sleep,
        price_per_1k: tuple[float | str, float | str] = (0, 0),
        healthy: bool = True,
        stream_fail_after: int | None = None,
        provider_name: str | None = None,
        supports_prefill: bool | None = None,
    ) -> None:
        self.model_id = model_id
        self._supports_prefill = supports_prefill
        self.script: deque[Step] = deque(script)
        self.default_text = default_text
        self.latency = latency
        self.sleep = sleep
        self.input_price_per_1k = Decimal(str(price_per_1k[0]))
        self.output_price_per_1k = Decimal(str(price_per_1k[1]))
        self.healthy = healthy
        self.stream_fail_after = stream_fail_after
        self._catalog_id = provider_name or self.name
        self.calls = 0
        self.requests: list[GenerationRequest] = []
        self.closed = False

    @property
    def catalog_id(self) -> str:
        """``fake``, or ``provider_name``: a fake standing in for a priced provider bills as it."""
        return self._catalog_id

    def push(self, *steps: Step) -> None:
        """Append steps to the script."""
        self.script.extend(steps)

    def _next_text(self, request: GenerationRequest) -> str:
        self.calls += 1
        self.requests.append(request)
        step: Step = self.script.popleft() if self.script else self.default_text
        outcome = step(request) if callable(step) else step
        if isinstance(outcome, ProviderError) and outcome.provider is None:
            outcome.provider = self.catalog_id
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def usage_for(self, request: GenerationRequest, text: str) -> TokenUsage:
        input_tokens = self.count_tokens(request)
        output_tokens = len(text.split())
        in_cost = self.input_price_per_1k * input_tokens / _THOUSAND
        out_cost = self.output_price_per_1k * output_tokens / _THOUSAND
        return TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            input_cost_usd=float(in_cost),
            output_cost_usd=float(out_cost),
            total_cost_usd=float(in_cost + out_cost),
        )

    def count_tokens(self, request: GenerationRequest) -> int:
        # the same count usage_for bills, so estimate_cost is a true upper bound
        return max(1, sum(_words(m.get("content")) for m in request.to_messages())
                   + _words(request.system or ""))

    def estimate_cost(self, request: GenerationRequest) -> float:
        cost = (self.input_price_per_1k * self.count_tokens(request)
                + self.output_price_per_1k * request.max_tokens) / _THOUSAND
        return float(cost)

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        if self.latency:
            await self.sleep(self.latency)
        text = self._next_text(request)
        return GenerationResponse(
            text=text,
            provider=self.catalog_id,
            model_id=self.model_id,
            usage=self.usage_for(request, text),
            finish_reason="stop",
            latency_ms=self.latency * 1000,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        if self.latency:
            await self.sleep(self.latency)
        text = self._next_text(request)
        words = text.split(" ")
        sent: list[str] = []
        for i, word in enumerate(words):
            if self.stream_fail_after is not None and i >= self.stream_fail_after:
                raise StreamInterruptedError(
                    "fake stream cut", provider=self.catalog_id, partial_text=" ".join(sent)
                )
            piece = word if i == 0 else " " + word
            sent.append(word)
            yield StreamChunk(text=piece)
        yield StreamChunk(
            text="", finish_reason="stop", usage=self.usage_for(request, text),
            provider=self.catalog_id, model_id=self.model_id,
        )

    async def health_check(self) -> ProviderHealth:
        if self.healthy:
            return ProviderHealth(is_healthy=True, latency_ms=self.latency * 1000)
        return ProviderHealth(is_healthy=False, latency_ms=None, last_error="marked unhealthy")

    async def close(self) -> None:
        self.closed = True
