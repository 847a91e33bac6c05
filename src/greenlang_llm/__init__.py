"""greenlang-llm: call LLMs from several providers reliably and within budget.

The public API is flat: everything below is importable from ``greenlang_llm``.
Heavy parts (HTTP client, ledger drivers, price catalog) load on first use, so
``import greenlang_llm`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import (
    AllCircuitsOpenError,
    AllProvidersFailedError,
    AllProvidersRateLimitedError,
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
    UnsupportedParamsError,
)
from ._lazy import lazy_getattr
from ._types import (
    GenerationRequest,
    GenerationResponse,
    ProviderHealth,
    SplitUsage,
    StreamChunk,
    TokenUsage,
    UsagePart,
)

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreaker, CircuitState
    from .cost_tracker import BudgetStatus, CostSummary, CostTracker, Reservation
    from .llm_router import LLMRouter
    from .providers import AnthropicProvider, BaseLLMProvider, FakeProvider, OpenAIProvider
    from .providers.stream_guard import StreamGuard
    from .rate_limiter import RateLimiter
    from .retry import Backoff, RetryPolicy
    from .strategies import PerTierStrategy, RoutingStrategy, Strategy

__version__ = "0.1.0"

__all__ = [
    "AllCircuitsOpenError",
    "AllProvidersFailedError",
    "AllProvidersRateLimitedError",
    "AnthropicProvider",
    "AuthenticationError",
    "Backoff",
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
    "PerTierStrategy",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHealth",
    "ProviderTimeoutError",
    "RateLimitError",
    "RateLimiter",
    "Reservation",
    "RetryPolicy",
    "RoutingStrategy",
    "ServiceUnavailableError",
    "SplitUsage",
    "Strategy",
    "StreamChunk",
    "StreamGuard",
    "StreamInterruptedError",
    "TokenUsage",
    "UnsupportedParamsError",
    "UsagePart",
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
    "RoutingStrategy": ".strategies",
    "Strategy": ".strategies",
    "PerTierStrategy": ".strategies",
    "RateLimiter": ".rate_limiter",
    "Backoff": ".retry",
    "RetryPolicy": ".retry",
    "StreamGuard": ".providers.stream_guard",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
