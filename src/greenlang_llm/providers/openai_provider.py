"""GPT models over the OpenAI Chat Completions API, spoken directly (no SDK).

With ``base_url`` the same class serves any OpenAI-compatible server (vLLM,
Ollama, LiteLLM-style gateways, Azure-style proxies): give it a
``provider_name`` so responses and prices are labelled right; a model the
price catalog does not know costs 0 with one warning. Streams always ask for
``stream_options.include_usage``; a server that ignores it gets its tokens
counted locally (``usage.estimated=True``), never billed as $0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._types import GenerationRequest
from ..wire import openai as wire
from ._http import HttpProvider
from ._stream_reader import WireStreamParser

if TYPE_CHECKING:
    import random

    import aiohttp

    from ..rate_limiter import RateLimiter
    from ..wire._common import ParsedResponse

__all__ = ["OpenAIProvider"]


class OpenAIProvider(HttpProvider):
    """One model behind an OpenAI-style API. Key from ``api_key`` or ``OPENAI_API_KEY``;
    base URL from ``base_url``, ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``
    (ends in ``/v1``, as in the official SDK)."""

    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    generate_path: ClassVar[str] = "/chat/completions"
    models_path: ClassVar[str] = "/models"

    def __init__(
        self,
        model_id: str,
        api_key: str | None = None,
        max_retries: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 8.0,
        timeout: float = 60.0,
        max_connections: int = 100,
        base_url: str | None = None,
        *,
        provider_name: str | None = None,
        session: aiohttp.ClientSession | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        max_retry_after: float = 60.0,
        first_token_timeout: float | None = None,
        idle_timeout: float | None = None,
        health_timeout: float = 10.0,
        extra_headers: Mapping[str, str] | None = None,
        require_done: bool = True,
    ) -> None:
        self._provider_name = provider_name or self.name
        self.require_done = require_done
        super().__init__(
            model_id, api_key, max_retries, base_delay, max_delay, timeout, max_connections, base_url,
            session=session, rate_limiter=rate_limiter, sleep=sleep, clock=clock, rng=rng,
            max_retry_after=max_retry_after, first_token_timeout=first_token_timeout,
            idle_timeout=idle_timeout, health_timeout=health_timeout, extra_headers=extra_headers,
        )

    @property
    def display_name(self) -> str:
        """``openai``, or the ``provider_name`` of an OpenAI-compatible server."""
        return self._provider_name

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _build_body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        return wire.build_request(request, self.model_id, stream=stream)

    def _parse_body(self, raw: dict[str, Any]) -> ParsedResponse:
        return wire.parse_response(raw)

    def _new_stream_parser(self) -> WireStreamParser:
        return wire.StreamParser(provider=self.display_name, require_done=self.require_done)
