"""greenlang-llm: call LLMs from several providers reliably and within budget.

The public API is flat: everything below is importable from ``greenlang_llm``.
Heavy parts (HTTP client, ledger drivers, price catalog) load on first use, so
``import greenlang_llm`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
    StreamInterruptedError,
)
from ._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk, TokenUsage

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker, CircuitState
    from .cost_tracker import BudgetStatus, CostSummary, CostTracker, Reservation
    from .llm_router import LLMRouter, RoutingStrategy
    from .providers import AnthropicProvider, BaseLLMProvider, FakeProvider, OpenAIProvider
    from .rate_limiter import RateLimiter

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailedError",
    "AnthropicProvider",
    "AuthenticationError",
    "BaseLLMProvider",
    "BudgetExceededError",
    "BudgetStatus",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "CostSummary",
    "CostTracker",
    "FakeProvider",
    "GenerationRequest",
    "GenerationResponse",
    "InvalidRequestError",
    "LLMRouter",
    "NotFoundError",
    "OpenAIProvider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHealth",
    "ProviderTimeoutError",
    "RateLimitError",
    "RateLimiter",
    "Reservation",
    "RoutingStrategy",
    "ServiceUnavailableError",
    "StreamChunk",
    "StreamInterruptedError",
    "TokenUsage",
    "__version__",
]

_LAZY = {
    "AnthropicProvider": ".providers",
    "BaseLLMProvider": ".providers",
    "FakeProvider": ".providers",
    "OpenAIProvider": ".providers",
    "BudgetStatus": ".cost_tracker",
    "CostSummary": ".cost_tracker",
    "CostTracker": ".cost_tracker",
    "Reservation": ".cost_tracker",
    "CircuitBreaker": ".circuit_breaker",
    "CircuitState": ".circuit_breaker",
    "LLMRouter": ".llm_router",
    "RoutingStrategy": ".llm_router",
    "RateLimiter": ".rate_limiter",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
