"""The top-level request fields of each API that no neutral field covers, by what another API does
with them (docs/fields.md): a **hint** is dropped (and named in ``x-greenlang-dropped-params``), a
**meaning** field is refused. Any other unknown field is refused too; the meaning lists exist so
the refusal can be read as deliberate.

Both wire modules need both APIs' lists (each ``fit`` judges the other API's caller), so they live
here, once, rather than in either module importing the other.
"""

from __future__ import annotations

__all__ = ["ANTHROPIC_HINTS", "ANTHROPIC_MEANING", "OPENAI_HINTS", "OPENAI_MEANING"]

OPENAI_HINTS: frozenset[str] = frozenset({
    "seed", "presence_penalty", "frequency_penalty", "logit_bias", "service_tier", "store", "metadata",
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "safety_identifier",
    "verbosity", "prediction",
})
"""Chat Completions fields that only steer sampling, caching, storage or billing."""

OPENAI_MEANING: frozenset[str] = frozenset(
    {"modalities", "audio", "web_search_options", "functions", "function_call"})
"""Chat Completions fields that change what the answer is (``modalities`` only beyond ``["text"]``)."""

ANTHROPIC_HINTS: frozenset[str] = frozenset({"service_tier", "inference_geo", "cache_control", "speed"})
"""Messages API fields that only steer capacity, placement, caching or speed (top-level
``cache_control`` is the same prompt-cache marker as the block-level one)."""

ANTHROPIC_MEANING: frozenset[str] = frozenset({"container", "mcp_servers", "context_management"})
"""Messages API fields that give the model tools or state no other API has."""
