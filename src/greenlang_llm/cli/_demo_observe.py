"""What the demo watches while it runs: attempts per request, latencies, events.

Why a provider subclass and not a router hook: the router reports totals
(``get_metrics``) and breaker transitions, but not *which* provider failed on
*which* request before another one answered — the failover table needs that.
Subclassing the real provider class keeps everything the router looks at
(``name``, ``model_id``, ``estimate_cost``) untouched; the override only notes
each attempt's outcome against the request being served, found through a
context variable the demo sets around each router call.
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from .._types import GenerationRequest, GenerationResponse, StreamChunk
from ..providers.base_provider import BaseLLMProvider

__all__ = ["CURRENT_REQUEST", "Event", "Observer", "observed"]

CURRENT_REQUEST: contextvars.ContextVar[int] = contextvars.ContextVar("greenlang_demo_request", default=-1)
P = TypeVar("P", bound=BaseLLMProvider)


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str
    """``fault``, ``breaker``, ``alert`` or ``info``."""
    text: str
    style: str = ""


@dataclass
class Observer:
    """Collects attempts (per request index), latency samples and the event log."""

    attempts: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    events: list[Event] = field(default_factory=list)
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=8))
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    def failed(self, label: str, error: BaseException) -> None:
        index = CURRENT_REQUEST.get()
        if index >= 0:
            self.attempts[index].append((label, type(error).__name__))

    def succeeded(self, label: str, elapsed_ms: float) -> None:
        self.latencies_ms[label].append(elapsed_ms)

    def emit(self, kind: str, text: str, style: str = "", at: datetime | None = None) -> None:
        event = Event(at or datetime.now(UTC), kind, text, style)
        self.events.append(event)
        self.recent.append(event)
        for listener in self.listeners:
            listener(event)


def observed(cls: type[P], observer: Observer, label: str, **kwargs: Any) -> P:
    """An instance of a subclass of ``cls`` that reports each attempt to ``observer``."""

    class Observed(cls):  # type: ignore[valid-type,misc]
        async def generate(self, request: GenerationRequest) -> GenerationResponse:
            started = time.perf_counter()
            try:
                response: GenerationResponse = await super().generate(request)
            except Exception as error:
                observer.failed(label, error)
                raise
            observer.succeeded(label, (time.perf_counter() - started) * 1000)
            return response

        async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
            started = time.perf_counter()
            inner = super().stream(request)
            try:
                async for chunk in inner:
                    yield chunk
            except Exception as error:
                observer.failed(label, error)
                raise
            finally:
                close = getattr(inner, "aclose", None)
                if close is not None:
                    await close()
            observer.succeeded(label, (time.perf_counter() - started) * 1000)

    Observed.__name__ = Observed.__qualname__ = f"Observed{cls.__name__}"
    instance: P = Observed(**kwargs)
    return instance
