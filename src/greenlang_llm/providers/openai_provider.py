"""GPT models over the OpenAI Chat Completions API, spoken directly (no SDK).

With ``base_url`` the same class serves any OpenAI-compatible server (vLLM,
Ollama, LiteLLM-style gateways, Azure-style proxies): give it a
``provider_name`` so responses and prices are labelled right; a model the
price catalog does not know costs 0 with one warning. Streams always ask for
``stream_options.include_usage``; a server that ignores it gets its tokens
counted locally (``usage.estimated=True``), never billed as $0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Unpack

from .._types import GenerationRequest
from ..wire import openai as wire
from ._http import HttpProvider
from ._stream_reader import WireStreamParser

if TYPE_CHECKING:
    from ..wire._common import Fit, ParsedResponse
    from .http_options import HttpOptions

__all__ = ["OpenAIProvider"]


class OpenAIProvider(HttpProvider):
    """One model behind an OpenAI-style API. Key from ``api_key`` or ``OPENAI_API_KEY``;
    base URL from ``base_url``, ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``
    (ends in ``/v1``, as in the official SDK). ``supports_prefill``: whether the model accepts a
    continuation's assistant prefill (None: the table in ``prefill_support``, else learned)."""

    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    generate_path: ClassVar[str] = "/chat/completions"
    api: ClassVar[str | None] = "openai"
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
        require_done: bool = True,
        supports_prefill: bool | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        """The original package's positional order (``max_connections`` 7th, ``base_url`` 8th);
        ``options`` are ``HttpOptions``."""
        self._provider_name = provider_name or self.name
        self.require_done = require_done
        self._supports_prefill = supports_prefill
        super().__init__(
            model_id, api_key, max_retries, base_delay, max_delay, timeout, max_connections, base_url,
            **options,
        )

    @property
    def catalog_id(self) -> str:
        """``openai``, or the ``provider_name`` of an OpenAI-compatible server: its responses carry
        that name and its usage is priced under it."""
        return self._provider_name

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _build_body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        return wire.build_request(request, self.model_id, stream=stream)

    def _parse_body(self, raw: dict[str, Any], request: GenerationRequest) -> ParsedResponse:
        return wire.parse_response(raw, request)

    def _new_stream_parser(self, request: GenerationRequest) -> WireStreamParser:
        return wire.StreamParser(provider=self.catalog_id, require_done=self.require_done, request=request)

    def _fit(self, request: GenerationRequest) -> Fit:
        return wire.fit(request)
