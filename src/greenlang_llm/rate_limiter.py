"""Client-side rate limits: token buckets for requests/min and tokens/min, plus 429 cool-downs.

One ``RateLimiter`` guards one provider deployment (one API key + model): create
one per provider, as the router and gateway do, so one provider's limits never
slow another. Both buckets are ``token_bucket.TokenBucket`` (the gateway's per-key
limits use the same one): they hold up to ``burst_seconds`` worth of their rate
(a full minute by default) and refill continuously.

Why a reservation design: ``acquire`` debits the buckets *immediately*, even
into debt, and then sleeps until the debt would be repaid. Each caller's wait is
therefore fixed at arrival — callers are served strictly in arrival order (fair),
there is no lock to hold across an ``await``, and ``max_wait`` can be checked
before anything is taken. A caller cancelled while waiting gives its share back.

After an upstream 429, ``cool_down(retry_after)`` blocks every acquisition until
then; waiters already queued sleep on past it. Clock and sleep are injected, so
tests run in no real time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ._errors import RateLimitError
from .retry import _asyncio_sleep
from .token_bucket import TokenBucket

__all__ = ["RateLimiter"]


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits for one provider; ``None`` = unlimited.

    ``acquire(tokens)`` waits its turn (``wait=True``) or raises
    :class:`RateLimitError` with ``retry_after`` at once (``wait=False``, or when the
    wait would exceed ``max_wait``). A request larger than the token bucket is let
    through when the bucket is full, leaving a debt that later callers wait out.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        max_wait: float | None = None,
        burst_seconds: float = 60.0,
        provider: str | None = None,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute),
                            ("tokens_per_minute", tokens_per_minute)):
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if max_wait is not None and max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be positive, got {burst_seconds}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_wait = max_wait
        self.provider = provider
        self._clock = clock
        self._sleep = sleep
        self._requests = (
            None if requests_per_minute is None
            else TokenBucket(requests_per_minute, clock, burst_seconds=burst_seconds)
        )
        self._tokens = (
            None if tokens_per_minute is None
            else TokenBucket(tokens_per_minute, clock, burst_seconds=burst_seconds)
        )
        self._blocked_until = clock()
        self._waiting = 0

    # -------------------------------------------------------------- inspection

    @property
    def waiting(self) -> int:
        """Callers currently sleeping in ``acquire``."""
        return self._waiting

    def cooling_down_for(self) -> float:
        """Seconds left of the current cool-down (0 when none)."""
        return max(0.0, self._blocked_until - self._clock())

    def available(self) -> tuple[float | None, float | None]:
        """(requests, tokens) that could be taken right now; ``None`` for an unlimited bucket."""
        now = self._clock()
        out: list[float | None] = []
        for bucket in (self._requests, self._tokens):
            if bucket is None:
                out.append(None)
            else:
                bucket.refill(now)
                out.append(max(0.0, bucket.level))
        return out[0], out[1]

    # -------------------------------------------------------------- acquiring

    def _delay(self, tokens: float, now: float) -> float:
        delay = max(0.0, self._blocked_until - now)
        if self._requests is not None:
            self._requests.refill(now)
            delay = max(delay, self._requests.wait_for(min(1.0, self._requests.capacity)))
        if self._tokens is not None and tokens > 0:
            self._tokens.refill(now)
            # an oversized request needs a full bucket, not more than the bucket can hold
            delay = max(delay, self._tokens.wait_for(min(tokens, self._tokens.capacity)))
        return delay

    def _debit(self, tokens: float) -> None:
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None and tokens > 0:
            self._tokens.level -= tokens

    def _refund(self, tokens: float) -> None:
        if self._requests is not None:
            self._requests.level = min(self._requests.capacity, self._requests.level + 1)
        if self._tokens is not None and tokens > 0:
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + tokens)

    async def acquire(self, tokens: int = 1, wait: bool = True) -> float:
        """Take one request and ``tokens`` tokens; return the seconds waited.

        Raises :class:`RateLimitError` (``retry_after`` = the wait needed) instead of
        waiting when ``wait`` is false or the wait would exceed ``max_wait``.
        """
        if isinstance(tokens, bool) or not isinstance(tokens, int | float) or tokens < 0:
            raise ValueError(f"tokens must be a non-negative number, got {tokens!r}")
        now = self._clock()
        delay = self._delay(tokens, now)
        if delay > 0 and (not wait or (self.max_wait is not None and delay > self.max_wait)):
            raise RateLimitError(
                f"local rate limit: next slot in {delay:.3f}s", retry_after=delay,
                provider=self.provider, status_code=None,
            )
        self._debit(tokens)
        if delay <= 0:
            return 0.0
        start, ready = now, now + delay
        self._waiting += 1
        try:
            while True:
                await self._sleep(delay)
                now = self._clock()
                # a cool-down that began while we slept pushes our turn back
                delay = max(ready, self._blocked_until) - now
                if delay <= 0:
                    break
        except BaseException:
            self._refund(tokens)  # give our share back to those behind us
            raise
        finally:
            self._waiting -= 1
        return now - start

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take capacity only if it is there now; never waits, never raises for the limit."""
        now = self._clock()
        if self._delay(tokens, now) > 0:
            return False
        self._debit(tokens)
        return True

    def adjust_tokens(self, delta: int) -> None:
        """Correct the token bucket once the real usage is known (positive = used more)."""
        if self._tokens is not None and delta:
            self._tokens.refill(self._clock())
            self._tokens.level = min(self._tokens.capacity, self._tokens.level - delta)

    def cool_down(self, seconds: float | None) -> None:
        """Block every acquisition for ``seconds`` (an upstream 429's ``retry_after``)."""
        if seconds is None or not seconds > 0:
            return
        self._blocked_until = max(self._blocked_until, self._clock() + float(seconds))

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute}, max_wait={self.max_wait})"
        )
