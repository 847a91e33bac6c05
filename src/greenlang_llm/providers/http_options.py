"""The keyword options every HTTP provider accepts, declared once.

The positional parameters of ``AnthropicProvider`` and ``OpenAIProvider`` are the
original package's contract and differ between the two (``base_url`` is 7th
for Anthropic, 8th for OpenAI, after ``max_connections``), so each class keeps
its own positional list. Everything else is keyword-only and the same for every
HTTP provider, today's and the ones to come (Gemini, Bedrock, Azure): a subclass
takes ``**options: Unpack[HttpOptions]`` and forwards it to ``HttpProvider``
untouched, so adding an option is one line here and one use in ``_http.py``,
and mypy checks every caller's keywords against this list.

``HttpProvider`` refuses a key that is not declared here with the ``TypeError``
Python gives for an unexpected keyword argument, so a typo is not silently
ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import random

    import aiohttp

    from ..rate_limiter import RateLimiter

__all__ = ["HttpOptions", "check_option_names"]


class HttpOptions(TypedDict, total=False):
    """Keyword-only options of every HTTP provider (docs/providers.md has the table)."""

    session: aiohttp.ClientSession | None
    """Use this session instead of the provider's own pool; its owner closes it."""
    rate_limiter: RateLimiter | None
    """Acquired before every attempt; a 429's ``retry-after`` cools it down."""
    sleep: Callable[[float], Awaitable[None]] | None
    """The retry policy's sleep (default ``asyncio.sleep``)."""
    clock: Callable[[], float] | None
    """The retry policy's and deadlines' clock (default ``time.monotonic``)."""
    rng: random.Random | None
    """The backoff jitter's random source."""
    max_retry_after: float
    """A ``retry-after`` longer than this is raised at once instead of slept on (default 60)."""
    first_token_timeout: float | None
    """Streams: seconds until the first text delta (default ``timeout``)."""
    idle_timeout: float | None
    """Streams: longest gap between two text deltas (default ``timeout``)."""
    health_timeout: float
    """Seconds for the health probe, capped by ``timeout`` (default 10)."""
    extra_headers: Mapping[str, str] | None
    """Added to every request."""


def check_option_names(owner: str, options: Mapping[str, object]) -> None:
    """Raise the ``TypeError`` of an unexpected keyword argument for a name ``HttpOptions`` lacks."""
    for name in options:
        if name not in HttpOptions.__optional_keys__:
            raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {name!r}")
