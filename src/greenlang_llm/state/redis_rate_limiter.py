"""A provider's requests/min and tokens/min shared by every replica: ``RateLimiter`` kept in Redis.

Same contract as :class:`greenlang_llm.rate_limiter.RateLimiter` (pass it as a provider's
``rate_limiter=``): ``acquire`` debits at once, even into debt, and sleeps out its turn;
``wait=False`` or a wait above ``max_wait`` raises ``RateLimitError`` without taking
anything; a cancelled waiter gives its share back; ``cool_down`` after an upstream 429
blocks every replica until then. One Lua script per decision, on Redis's clock (GCRA
over both buckets and the cool-down key at once), so N replicas calling one API key
together stay within that key's limits. If Redis does not answer, the replica falls
back to a local ``RateLimiter`` with ``1/replicas`` of each limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import RateLimitError
from ..rate_limiter import RateLimiter
from .redis_client import redis_errors

__all__ = ["ACQUIRE", "RedisRateLimiter"]

log = logging.getLogger("greenlang_llm.state.redis")

ACQUIRE = """
-- ARGV: prefix, rpm (0 = none), tpm (0 = none), tokens, op ('acquire'|'try'|'refund'|'adjust'|'cool'),
--       max_wait (-1 = none), window s, seconds (cool)
-- -> the wait in seconds as a string, or 'refused:<wait>'
local P, rpm, tpm, tokens, op = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local max_wait, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local function tat(key)
  local v = tonumber(redis.call('GET', key) or '0')
  if v < now then v = now end
  return v
end
local function store(key, v)
  redis.call('SET', key, string.format('%.6f', v), 'PX', math.max(1, math.ceil((v - now + window) * 1000)))
end
if op == 'cool' then
  local until_ = now + tonumber(ARGV[8])
  if until_ > tonumber(redis.call('GET', P .. 'cool') or '0') then
    local px = math.ceil(tonumber(ARGV[8]) * 1000) + 1000
    redis.call('SET', P .. 'cool', string.format('%.6f', until_), 'PX', px)
  end
  return '0'
end
local buckets = {}
if rpm > 0 then buckets[#buckets + 1] = {P .. 'rpm', 1, rpm / 60, math.min(1, rpm / 60 * window)} end
if tpm > 0 and tokens ~= 0 then
  buckets[#buckets + 1] = {P .. 'tpm', tokens, tpm / 60, math.min(tokens, tpm / 60 * window)}
end
if op == 'refund' or op == 'adjust' then
  for _, b in ipairs(buckets) do
    if op == 'refund' or b[1] == P .. 'tpm' then
      local v = tat(b[1]) - b[2] / b[3]
      if op == 'adjust' then v = tat(b[1]) + b[2] / b[3] end
      store(b[1], v)
    end
  end
  return '0'
end
local wait = math.max(0, tonumber(redis.call('GET', P .. 'cool') or '0') - now)
for _, b in ipairs(buckets) do
  -- the wait until ``need`` fits (a bucket never needs more than it holds), as RateLimiter does
  wait = math.max(wait, tat(b[1]) + b[4] / b[3] - now - window)
end
if wait > 0 and (op == 'try' or (max_wait >= 0 and wait > max_wait)) then
  return 'refused:' .. string.format('%.6f', wait)
end
for _, b in ipairs(buckets) do store(b[1], tat(b[1]) + b[2] / b[3]) end
return string.format('%.6f', math.max(0, wait))
"""


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class RedisRateLimiter(RateLimiter):
    """``RateLimiter`` whose buckets live in Redis under ``key`` (one per provider deployment)."""

    def __init__(
        self,
        client: Any,
        key: str,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        prefix: str = "greenlang:",
        replicas: Callable[[], int] = lambda: 1,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        max_wait: float | None = None,
        burst_seconds: float = 60.0,
        provider: str | None = None,
    ) -> None:
        super().__init__(requests_per_minute, tokens_per_minute, sleep=sleep, max_wait=max_wait,
                         burst_seconds=burst_seconds, provider=provider)  # fmt: skip
        self._script = client.register_script(ACQUIRE)
        self._errors = redis_errors()
        self._prefix = f"{prefix}prl:{key}:"
        self._window = burst_seconds
        self._replicas = replicas
        self._local: RateLimiter | None = None
        self._local_until = 0.0
        self._client = client

    def _run(self, op: str, tokens: float = 0, seconds: float = 0.0) -> str | None:
        if self._local is not None and time.monotonic() < self._local_until:
            return None
        try:
            out = self._script(args=(
                self._prefix, self.requests_per_minute or 0, self.tokens_per_minute or 0, repr(float(tokens)),
                op, -1 if self.max_wait is None else self.max_wait, self._window, repr(float(seconds)),
            ))  # fmt: skip
        except self._errors as exc:
            if self._local is None:
                n = max(1, self._replicas())
                log.warning("Redis unreachable (%s): provider limit %s runs locally at 1/%d",
                            type(exc).__name__, self._prefix, n)  # fmt: skip
                self._local = RateLimiter(
                    None if self.requests_per_minute is None else self.requests_per_minute / n,
                    None if self.tokens_per_minute is None else self.tokens_per_minute / n,
                    sleep=self._sleep, max_wait=self.max_wait, burst_seconds=self._window,
                    provider=self.provider,
                )  # fmt: skip
            self._local_until = time.monotonic() + 1.0
            return None
        self._local = None
        return str(out)

    async def acquire(self, tokens: int = 1, wait: bool = True) -> float:
        if isinstance(tokens, bool) or not isinstance(tokens, int | float) or tokens < 0:
            raise ValueError(f"tokens must be a non-negative number, got {tokens!r}")
        out = self._run("acquire" if wait else "try", tokens)
        if out is None:
            assert self._local is not None
            return await self._local.acquire(tokens, wait)
        if out.startswith("refused:"):
            delay = float(out.split(":", 1)[1])
            raise RateLimitError(f"shared rate limit: next slot in {delay:.3f}s", retry_after=delay,
                                 provider=self.provider, status_code=None)  # fmt: skip
        delay = float(out)
        if delay <= 0:
            return 0.0
        self._waiting += 1
        try:
            await self._sleep(delay)
        except BaseException:
            self._run("refund", tokens)  # give our share back to those behind us
            raise
        finally:
            self._waiting -= 1
        return delay

    def try_acquire(self, tokens: int = 1) -> bool:
        out = self._run("try", tokens)
        if out is None:
            assert self._local is not None
            return self._local.try_acquire(tokens)
        return not out.startswith("refused:")

    def adjust_tokens(self, delta: int) -> None:
        if self.tokens_per_minute is not None and delta and self._run("adjust", delta) is None:
            assert self._local is not None
            self._local.adjust_tokens(delta)

    def cooling_down_for(self) -> float:
        """Seconds left of the shared cool-down (any replica's 429)."""
        try:
            until = float(self._client.get(self._prefix + "cool") or 0)
            secs, micros = self._client.time()
        except self._errors:
            return float(self._local.cooling_down_for()) if self._local is not None else 0.0
        return max(0.0, until - (float(secs) + float(micros) / 1e6))

    def available(self) -> tuple[float | None, float | None]:
        """Not tracked locally for a shared limiter: (None, None) (use ``try_acquire`` to probe)."""
        return None, None

    def cool_down(self, seconds: float | None) -> None:
        if seconds is None or not seconds > 0:
            return
        if self._run("cool", 0, float(seconds)) is None:
            assert self._local is not None
            self._local.cool_down(seconds)
