"""Providers: one module per vendor, all subclasses of ``BaseLLMProvider``.

The vendor modules pull in the HTTP client, so they load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from .base_provider import BaseLLMProvider
from .fake import FakeProvider

if TYPE_CHECKING:
    from .anthropic_provider import AnthropicProvider
    from .openai_provider import OpenAIProvider

__all__ = ["AnthropicProvider", "BaseLLMProvider", "FakeProvider", "OpenAIProvider"]

_LAZY = {
    "AnthropicProvider": ".anthropic_provider",
    "OpenAIProvider": ".openai_provider",
}

__getattr__ = lazy_getattr(__name__, _LAZY)
