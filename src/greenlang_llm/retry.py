"""Retry with exponential backoff, as small policy objects (after tenacity).

``Backoff`` computes the wait before retry ``n`` (0-based): ``base_delay * 2**n``
capped at ``max_delay`` — 1, 2, 4, 8 s for the defaults — with jitter.
``RetryPolicy`` runs an async call, retrying only errors whose ``retryable`` is
true, at most ``max_retries`` times after the first attempt, and waits the
server's ``retry_after`` instead when that is longer. A ``retry_after`` beyond
``max_retry_after`` (or past the deadline) is not slept on: the error is raised
so that the router can fail over instead of parking the caller.

Sleep, clock and RNG are injected, so tests run in no real time.

A router call tells its providers whether a fallback is waiting through
:data:`FALLBACK`, a context variable (the router's ``FailoverChain`` sets it before
each attempt): a provider that timed out without an answer while another candidate
waits raises at once instead of retrying, so the router fails over after one
timeout. Declared here, beside the policy that reads it, so providers need not
import the router.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from ._errors import ProviderError

__all__ = ["FALLBACK", "Backoff", "FallbackProbe", "RetryPolicy"]

T = TypeVar("T")
Jitter = Literal["equal", "full", "none"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``base_delay * 2**n`` capped at ``max_delay``, with jitter.

    A small immutable policy (tenacity's ``wait_exponential`` is the model): the
    randomness comes from the ``random.Random`` the caller passes to :meth:`delay`,
    so tests choose it. Providers use one through :class:`RetryPolicy`; the router's
    ``retry_backoff`` is one for same-provider retries."""

    base_delay: float = 1.0
    max_delay: float = 8.0
    jitter: Jitter = "equal"
    """``equal``: uniform in [d/2, d]; ``full``: uniform in [0, d]; ``none``: exactly d."""

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")
        if self.jitter not in ("equal", "full", "none"):
            raise ValueError(f"jitter must be 'equal', 'full' or 'none', got {self.jitter!r}")

    def ceiling(self, retry_number: int) -> float:
        """The un-jittered wait before retry ``retry_number`` (0-based)."""
        return float(min(self.max_delay, self.base_delay * (2 ** min(retry_number, 62))))

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(retry_number)
        draw = (rng or random).random()
        if self.jitter == "full":
            return ceiling * draw
        if self.jitter == "equal":
            return ceiling / 2 + ceiling / 2 * draw
        return ceiling


class FallbackProbe(Protocol):
    """What a provider may ask the router call it is running in (``failover.FailoverChain``)."""

    def has_fallback(self, provider: object) -> bool:
        """True while ``provider``'s attempt runs and another candidate of the call remains."""
        ...


FALLBACK: ContextVar[FallbackProbe | None] = ContextVar("greenlang_llm_fallback", default=None)
"""The router call around the current task's provider attempt (None: a provider used alone).

Read only on a failure (never on the hot path); its answer is specific to one provider
and one attempt, so a stale value left in a task's context says False."""


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(slots=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError("max_retries must be an integer")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {self.max_retries}")

    def wait_for(self, error: ProviderError, retry_number: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not error.retryable or retry_number >= self.max_retries:
            return None
        wait = self.backoff.delay(retry_number, self.rng)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > wait:
            if retry_after > self.max_retry_after:
                return None
            wait = float(retry_after)
        return wait

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        on_retry: Callable[[ProviderError, int, float], None] | None = None,
        give_up: Callable[[ProviderError], bool] | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds, a non-retryable error, or the budget ends.

        ``deadline`` is an absolute time on ``clock``: a wait that would end after
        it is not taken, and the last error is raised instead. ``give_up(error)``
        true raises ``error`` at once although the policy would retry it (a provider
        gives up on a silent upstream when its router has a fallback waiting).
        """
        retry_number = 0
        while True:
            try:
                return await attempt()
            except ProviderError as error:
                wait = self.wait_for(error, retry_number)
                if wait is None or (deadline is not None and self.clock() + wait >= deadline):
                    raise
                if give_up is not None and give_up(error):
                    raise
                if on_retry is not None:
                    on_retry(error, retry_number, wait)
                await self.sleep(wait)
                retry_number += 1
