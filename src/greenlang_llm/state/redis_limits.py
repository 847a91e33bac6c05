"""Per-minute limits shared by every replica: GCRA in Redis, one atomic script per decision.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the *theoretical
arrival time* ``tat``: the moment the bucket would be full again. A bucket of
``per_minute`` units refilled over 60 s admits ``amount`` now iff
``max(tat, now) + amount / rate <= now + 60``. One key, one script, and Redis's own
clock (``TIME``) — so replicas with skewed clocks still share one exact limit. It is
the same token bucket as ``token_bucket.TokenBucket`` (full at start, debt allowed
through ``charge``), so a key's RPM/TPM mean the same with one replica or ten.

A Redis outage must not turn limits off: each bucket then falls back to a local
bucket holding ``1/replicas`` of the limit (replicas as last counted), logged once,
and Redis is tried again after ``retry_s``.

Only the RPM take is a round trip on the request path. TPM charges (known after the
call) add up locally and reach Redis with the next TPM check of that key (its answer
is reused for ``peek_ttl`` seconds) or within ``flush_interval`` from a background
flush, whichever comes first. TPM is enforced after the fact anyway, so a debt seen
some milliseconds late changes nothing that matters; a round trip per charge, or a
thread woken per request, would cost every request latency (the GIL is shared with
the event loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .redis_client import redis_errors

__all__ = ["GCRA", "RedisLimits", "RedisTokenBucket"]

log = logging.getLogger("greenlang_llm.state.redis")

GCRA = """
-- ARGV: key, per_minute, amount, op ('take' | 'peek' | 'charge')
-- -> '' when admitted (take/peek) or charged, else the seconds to wait, as a string
local key, per_minute, amount, op = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, window = per_minute / 60, 60
local tat = tonumber(redis.call('GET', key) or '0')
if tat < now then tat = now end
local function store(v)
  redis.call('SET', key, string.format('%.6f', v), 'PX', math.ceil((v - now) * 1000) + 1000)
end
if op == 'peek' then
  if tat < now + window then return '' end
  return string.format('%.6f', tat - now - window + 1e-9 / rate)
end
local new = tat + amount / rate
if op == 'charge' then
  store(new)
  if new < now + window then return '' end
  return string.format('%.6f', new - now - window + 1e-9 / rate)
end
if new - now > window then return string.format('%.6f', new - now - window) end
store(new)
return ''
"""


class RedisLimits:
    """Factory and shared outage state for the Redis buckets of one gateway."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "greenlang:",
        replicas: Callable[[], int] = lambda: 1,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        peek_ttl: float = 0.05,
        flush_interval: float = 0.1,
        background: bool = True,
        redis_down: Callable[[], bool] = lambda: False,
    ) -> None:
        """``redis_down``: another component's verdict (the budget state's watcher probes in the
        background), so that a Redis that hangs is not re-probed on the request path."""
        self._redis = client
        self._script = client.register_script(GCRA)
        self._errors = redis_errors()
        self.prefix = prefix
        self.replicas = replicas
        self.retry_s = retry_s
        self.clock = clock
        self._down_until = 0.0
        self.degraded = False
        self.peek_ttl = peek_ttl
        self._redis_down = redis_down
        self.background = background
        self.lock = threading.Lock()
        self._dirty: set[RedisTokenBucket] = set()
        self._stop = threading.Event()
        if background:
            threading.Thread(
                target=self._flush_loop, args=(flush_interval,), name="greenlang-redis-limits", daemon=True
            ).start()

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:  # the loop must survive anything; the next round retries
                log.exception("flushing shared rate limit charges failed")

    def mark_dirty(self, bucket: RedisTokenBucket) -> None:
        """Called under ``lock``: ``bucket`` has charges not yet sent."""
        self._dirty.add(bucket)

    def flush(self) -> None:
        """Send every bucket's pending charges (one round trip per bucket with charges)."""
        with self.lock:
            dirty, self._dirty = self._dirty, set()
        for bucket in dirty:
            bucket.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def bucket(self, name: str, per_minute: int) -> RedisTokenBucket:
        return RedisTokenBucket(self, f"{self.prefix}rl:{name}", per_minute)

    def run(self, key: str, per_minute: int, amount: float, op: str) -> str | None:
        """The script's answer, or None when Redis is down (the caller uses its local bucket)."""
        if self.degraded and (self.clock() < self._down_until or self._redis_down()):
            return None
        try:
            out = self._script(args=(key, per_minute, repr(float(amount)), op))
        except self._errors as exc:
            if not self.degraded:
                log.warning(
                    "Redis unreachable (%s): rate limits fall back to local buckets of 1/%d of each limit",
                    type(exc).__name__, max(1, self.replicas()),
                )  # fmt: skip
            self.degraded = True
            self._down_until = self.clock() + self.retry_s
            return None
        if self.degraded:
            log.warning("Redis answers again: rate limits are shared again")
            self.degraded = False
        return str(out)


class RedisTokenBucket:
    """``token_bucket.TokenBucket``'s interface (``try_take``, ``wait_for_positive``, ``charge``) in Redis."""

    __slots__ = ("_local", "_peeked", "_pending", "capacity", "key", "limits", "per_minute")

    def __init__(self, limits: RedisLimits, key: str, per_minute: int) -> None:
        self.limits = limits
        self.key = key
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self._local: Any = None
        self._peeked: tuple[float, float | None] = (float("-inf"), None)  # (when, answer)
        self._pending = 0.0  # charged here, not yet in Redis

    def _fallback(self) -> Any:
        from ..token_bucket import TokenBucket

        share = max(1, self.per_minute // max(1, self.limits.replicas()))
        if self._local is None or self._local.per_minute != share:
            self._local = TokenBucket(share, self.limits.clock)
        return self._local

    def try_take(self, amount: float = 1.0) -> float | None:
        """Take ``amount`` now and return None, or return the seconds until it would fit."""
        out = self.limits.run(self.key, self.per_minute, amount, "take")
        if out is None:
            wait: float | None = self._fallback().try_take(amount)
            return wait
        return float(out) if out else None

    def wait_for_positive(self) -> float | None:
        """None when the bucket is not in debt, else the seconds until it is not (``peek_ttl`` cache)."""
        now = self.limits.clock()
        when, answer = self._peeked
        if now - when < self.limits.peek_ttl:
            return None if answer is None or answer <= now - when else answer - (now - when)
        pending = self._take_pending()  # the check carries this replica's charges along
        out = self.limits.run(self.key, self.per_minute, pending, "charge" if pending else "peek")
        if out is None:
            fallback = self._fallback()
            if pending:
                fallback.charge(pending)
            wait: float | None = fallback.wait_for_positive()
            return wait
        self._peeked = (now, float(out) if out else None)
        return self._peeked[1]

    def charge(self, amount: float) -> None:
        """Add to the pending charge (sent with the next check or flush; see the module docstring)."""
        if not self.limits.background:
            self.charge_now(amount)
            return
        with self.limits.lock:
            self._pending += amount
            self.limits.mark_dirty(self)

    def _take_pending(self) -> float:
        with self.limits.lock:
            pending, self._pending = self._pending, 0.0
            return pending

    def flush(self) -> None:
        pending = self._take_pending()
        if pending:
            self.charge_now(pending)

    def charge_now(self, amount: float) -> None:
        now = self.limits.clock()
        out = self.limits.run(self.key, self.per_minute, amount, "charge")
        if out is None:
            self._fallback().charge(amount)
        else:
            self._peeked = (now, float(out) if out else None)
