"""Which models accept an assistant prefill: the small, maintained table of known answers.

A stream cut after its first text is continued on the next provider with the delivered
text as a trailing assistant turn (``continuation.prefill_request``). Some models refuse
that shape with a 400, so the router must know, before it asks, whether to send the
prefill or to restart the answer without it (``stream_call.py``). A provider's own
``supports_prefill`` (a constructor keyword, or the gateway's ``[[providers]]
supports_prefill``) always wins; this table is its default, by model id, whichever API
serves the model (the Anthropic API, Bedrock's ``us.anthropic.claude-opus-4-6-v1``,
Vertex's ``claude-haiku-4-5@20251001``, an OpenAI-compatible proxy's
``anthropic/claude-sonnet-4-6``): the model decides, not the wire. A model the table does
not know is ``None``: try the prefill and learn from a 400 (``RouteEntry.rejects_prefill``).

Keep it small and sourced; add a row only with a source, newest knowledge first:

- **Reject** (400 "This model does not support assistant message prefill. The conversation
  must end with a user message."): Claude Opus 4.6 and Sonnet 4.6 — Anthropic's migration
  guide and "What's new in Claude 4.6" (platform.claude.com/docs/en/about-claude/models/
  whats-new-claude-4-6#prefill-removal: "Prefilling assistant messages returns a 400 error
  on Claude 4.6 models"); Claude Opus 5 — measured by CLIProxyAPI
  (github.com/router-for-me/CLIProxyAPI/issues/5319) and Kilo Code
  (github.com/Kilo-Org/kilocode/issues/13286).
- **Accept**: Claude Haiku 4.5 (measured 200 in CLIProxyAPI#5319), Sonnet 4.5 and Opus 4.5
  (the prefill guide's own examples use ``claude-sonnet-4-5``; deepagents#1585 and
  strands-agents#1694 report 4.5 working where 4.6 fails), the Claude 4.0/4.1 and Claude 3
  families (the prefill guide, docs.claude.com/en/docs/prefill-claudes-response).

Lookups happen only when a stream is continued (never on the hot path) and are cached.
"""

from __future__ import annotations

import functools
import re

__all__ = ["KNOWN_PREFILL_SUPPORT", "known_prefill_support"]

KNOWN_PREFILL_SUPPORT: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"claude-(?:opus|sonnet)-4-6(?!\d)"), False),
    (re.compile(r"claude-opus-5(?=$|-20\d{6}|@|-v\d|:)"), False),
    (re.compile(r"claude-(?:opus|sonnet|haiku)-4-5(?!\d)"), True),
    (re.compile(r"claude-(?:opus|sonnet)-4(?:-1)?(?=$|-20\d{6}|@|-v\d|:)"), True),
    (re.compile(r"claude-3"), True),
)
"""(pattern searched in the lower-cased model id, accepts a prefill); the first match wins."""


@functools.lru_cache(maxsize=256)
def known_prefill_support(model_id: str) -> bool | None:
    """True / False when the table knows whether ``model_id`` accepts an assistant prefill, else None."""
    model = model_id.lower()
    for pattern, accepts in KNOWN_PREFILL_SUPPORT:
        if pattern.search(model):
            return accepts
    return None
