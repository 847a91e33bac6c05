"""Providers: one module per vendor, all subclasses of ``BaseLLMProvider``.

The vendor modules pull in the HTTP client, so they load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
