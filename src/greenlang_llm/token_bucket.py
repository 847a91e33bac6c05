"""The token bucket: one refill rule for every per-minute limit in the package.

Both the providers' client-side ``RateLimiter`` (requests and tokens per minute
toward one upstream) and the gateway's per-key RPM/TPM limits are this bucket,
so "60 per minute" means the same thing in both places, and the Redis-shared
key limits (``state/redis_limits``, GCRA with the same semantics) fall back to
it when Redis is away.

The bucket starts full, refills continuously at ``per_minute / 60`` units a
second up to ``capacity`` (``burst_seconds`` worth of the rate, a full minute by
default), and may go into debt: a charge known only after the fact (the tokens a
call used) is taken even when it does not fit, and later callers wait the debt
out. Time comes from an injected clock, so tests run in no real time. A clock
reading earlier than the last one (never with ``time.monotonic``) refills nothing.

Two ways in, over the same state:

- ``try_take`` / ``wait_for_positive`` / ``charge`` read the clock themselves:
  the gateway's ``Bucket`` protocol (``gateway/keys.py``).
- ``refill(now)`` / ``wait_for`` and the public ``level``: for a caller that
  reads the clock once for several buckets and reserves into debt, as
  ``RateLimiter.acquire`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``per_minute`` units refilled continuously; full at start; ``level`` may go below zero."""

    __slots__ = ("_clock", "capacity", "level", "per_minute", "rate", "stamp")

    def __init__(
        self, per_minute: float, clock: Callable[[], float] = time.monotonic, *, burst_seconds: float = 60.0
    ) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        # multiply before dividing: an integer limit gives an exact capacity (123, not 122.99...)
        self.capacity = per_minute * burst_seconds / 60.0
        self.level = self.capacity
        self._clock = clock
        self.stamp = clock()
        """The clock reading ``level`` is as of."""

    # -- with the caller's clock reading -------------------------------------------------------

    def refill(self, now: float) -> None:
        """Bring ``level`` up to date with ``now``."""
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` more can be taken (call after ``refill``); 0 if it can now."""
        shortfall = amount - self.level
        return shortfall / self.rate if shortfall > 0 else 0.0

    # -- reading the bucket's own clock --------------------------------------------------------

    def try_take(self, amount: float = 1.0) -> float | None:
        """Take ``amount`` now and return None, or return the seconds until it would fit."""
        self.refill(self._clock())
        if self.level >= amount:
            self.level -= amount
            return None
        return (amount - self.level) / self.rate

    def wait_for_positive(self) -> float | None:
        """None when the bucket is not in debt, else the seconds until it is not."""
        self.refill(self._clock())
        if self.level > 0:
            return None
        return (1e-9 - self.level) / self.rate

    def charge(self, amount: float) -> None:
        """Take ``amount`` whether or not it fits (a usage known only afterwards)."""
        self.refill(self._clock())
        self.level -= amount

    def __repr__(self) -> str:
        return f"TokenBucket(capacity={self.capacity:g}, level={self.level:g}, rate={self.rate:g}/s)"
