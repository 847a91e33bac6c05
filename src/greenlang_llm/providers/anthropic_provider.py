"""Claude over the Anthropic Messages API, spoken directly (no SDK).

Headers are the documented minimal set the official SDK 1.x sends:
``x-api-key`` and ``anthropic-version: 2023-06-01``. That version is the one
every Anthropic-compatible server accepts and the one under which
``temperature`` is still valid (API version 2026-10-21 rejects it); pass
``api_version=`` to send another. Payloads come from ``wire.anthropic``; the
pool, retries, timeouts and key handling from ``_http``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Unpack

from .._types import GenerationRequest
from ..wire import anthropic as wire
from ._http import HttpProvider
from ._stream_reader import WireStreamParser

if TYPE_CHECKING:
    from ..wire._common import Fit, ParsedResponse
    from .http_options import HttpOptions

__all__ = ["AnthropicProvider"]

API_VERSION = "2023-06-01"


class AnthropicProvider(HttpProvider):
    """One Claude model. Key from ``api_key`` or ``ANTHROPIC_API_KEY``; base URL from
    ``base_url``, ``ANTHROPIC_BASE_URL`` or ``https://api.anthropic.com`` (no ``/v1``).
    ``supports_prefill``: whether the model accepts a continuation's assistant prefill (None:
    the table in ``prefill_support``, else learned; see ``BaseLLMProvider.supports_prefill``)."""

    name: ClassVar[str] = "anthropic"
    key_env: ClassVar[str] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str] = "ANTHROPIC_BASE_URL"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    generate_path: ClassVar[str] = "/v1/messages"
    api: ClassVar[str | None] = "anthropic"
    models_path: ClassVar[str] = "/v1/models"

    def __init__(
        self,
        model_id: str,
        api_key: str | None = None,
        max_retries: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 8.0,
        timeout: float = 60.0,
        base_url: str | None = None,
        *,
        max_connections: int = 100,
        api_version: str = API_VERSION,
        supports_prefill: bool | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        """The original package's positional order (``base_url`` 7th); ``options`` are ``HttpOptions``."""
        self.api_version = api_version
        self._supports_prefill = supports_prefill
        super().__init__(
            model_id, api_key, max_retries, base_delay, max_delay, timeout, max_connections, base_url,
            **options,
        )

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": self.api_version}

    def _build_body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        return wire.build_request(request, self.model_id, stream=stream)

    def _parse_body(self, raw: dict[str, Any], request: GenerationRequest) -> ParsedResponse:
        return wire.parse_response(raw, request)

    def _new_stream_parser(self, request: GenerationRequest) -> WireStreamParser:
        return wire.StreamParser(provider=self.name, request=request)

    def _fit(self, request: GenerationRequest) -> Fit:
        return wire.fit(request)

    def _cache_write_1h(self, raw_usage: Any) -> int:
        split = raw_usage.get("cache_creation") if isinstance(raw_usage, Mapping) else None
        value = split.get("ephemeral_1h_input_tokens") if isinstance(split, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
