"""The abstract provider, and the seed's public types and errors re-exported.

A custom provider subclasses :class:`BaseLLMProvider` and implements
``generate``, ``stream`` and ``health_check``; everything else has a working
default, and ``super().__init__()`` is optional. Code written for the original
``llm`` package imports all of these names from this module.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import (
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
from .._types import (
    GenerationRequest,
    GenerationResponse,
    Message,
    ProviderHealth,
    StreamChunk,
    TokenUsage,
)

if TYPE_CHECKING:
    from ..wire._common import Fit

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "BaseLLMProvider",
    "BudgetExceededError",
    "CircuitBreakerOpenError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "GenerationRequest",
    "GenerationResponse",
    "InvalidRequestError",
    "Message",
    "NotFoundError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHealth",
    "ProviderTimeoutError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamChunk",
    "StreamInterruptedError",
    "TokenUsage",
]


class BaseLLMProvider(abc.ABC):
    """One model at one provider. Async context manager; ``close()`` frees the pool."""

    name: ClassVar[str] = "custom"
    """The provider's own name (``anthropic``, ``openai``): what metrics and errors say."""

    model_id: str = ""

    api: ClassVar[str | None] = None
    """The wire API this provider speaks (``openai``, ``anthropic``), or None for one that takes
    the neutral request as it is (a custom provider, ``FakeProvider``). A provider of the caller's
    API forwards the caller's body unchanged (``GenerationRequest.origin``)."""

    def fit(self, request: GenerationRequest) -> Fit:
        """What this provider drops (hints) or cannot express (it cannot serve the request) of the
        fields beyond text: asked by the router before it is called. The default takes everything:
        a custom provider sees the neutral request and judges for itself."""
        from ..wire._common import FITS

        return FITS

    @property
    def catalog_id(self) -> str:
        """The price-catalog id this provider's usage is billed under, and the name its responses
        carry: ``name``, unless a subclass serves one vendor's API under another name (an
        OpenAI-compatible server's ``provider_name``) and overrides this.

        Declared here, not looked up by attribute name, so every estimate of what a call will
        cost (``estimate_cost``, a budget's reservation, an interrupted stream's usage) reads the
        same catalog entry as the bill, for any provider. A property on the class, so a custom
        provider that never calls ``super().__init__`` has it too.
        """
        return self.name

    _supports_prefill: bool | None
    """Declared, never defaulted on the class: a wrapper that forwards unknown attributes to the
    provider it wraps (``StreamGuard``) then reads the wrapped provider's own setting."""

    @property
    def supports_prefill(self) -> bool | None:
        """Does this model accept a trailing assistant turn (a continuation's prefill)?

        True / False as set (a constructor keyword, the gateway's ``supports_prefill``, or
        assignment), else the answer of ``prefill_support``'s table of known models, else None:
        unknown, so a continuation tries the prefill and the router learns from a 400. Read
        only when a stream is continued, never on the hot path."""
        declared = getattr(self, "_supports_prefill", None)
        if declared is not None:
            return bool(declared)
        from ..prefill_support import known_prefill_support

        return known_prefill_support(self.model_id) if self.model_id else None

    @supports_prefill.setter
    def supports_prefill(self, value: bool | None) -> None:
        self._supports_prefill = value

    def __init__(self, model_id: str = "", *, supports_prefill: bool | None = None, **_: Any) -> None:
        if model_id:
            self.model_id = model_id
        self._supports_prefill = supports_prefill

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        """Answer the request in one piece."""

    @abc.abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        """Yield text deltas as they arrive; the last chunk has finish_reason and usage."""

    @abc.abstractmethod
    async def health_check(self) -> ProviderHealth:
        """A cheap probe. Never raises: failures come back as ``is_healthy=False``."""

    def count_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens of ``request`` for this model, counted offline."""
        from ..tokens import count_request_tokens

        return count_request_tokens(request, self.model_id)

    def estimate_cost(self, request: GenerationRequest) -> float:
        """Worst-case cost in USD: the prompt plus ``max_tokens`` of output, priced under
        ``catalog_id`` like the provider's actual usage."""
        from ..pricing import estimate_cost_usd

        tokens = self.count_tokens(request)
        return estimate_cost_usd(self.catalog_id, self.model_id, tokens, request.max_output_tokens)

    async def close(self) -> None:
        """Release connections. The default has nothing to release."""

    async def __aenter__(self) -> BaseLLMProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
