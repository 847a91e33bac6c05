"""Circuit breaker state in Redis: one breaker per provider for every replica.

A replica whose calls fail opens the breaker for all of them; when the open
period has passed exactly one replica gets the half-open probe (the admission is
one Lua script, so two replicas cannot both win it). The escalation is shared
too: the current open period lives in the same hash, so a trial failed on one
replica lengthens the wait for all of them, and a trial passed anywhere resets it. Times are Redis's own
(``TIME``), so replicas need not agree on their clocks.

The hot path stays local: a closed breaker admits from a mirror refreshed at most
every ``sync_interval`` seconds, and a success on a closed breaker with no failures
counted costs nothing. Redis is asked when something may change: a failure, a
probe, an admission while open or half-open, or a stale mirror. So another
replica's "open" reaches this one within ``sync_interval``.

If Redis stops answering, the breaker carries on with a local state (logged once)
and tries Redis again after ``retry_s``; the local state's generations are offset
so that no outcome admitted locally can be mistaken for a Redis one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..circuit_breaker import Admission, CircuitState, LocalBreakerState, open_periods_start
from .redis_client import redis_errors

__all__ = ["BREAKER", "RedisBreakerState", "redis_breaker_factory"]

log = logging.getLogger("greenlang_llm.state.redis")

BREAKER = """
-- ARGV: key, op ('sync'|'admit'|'fail'|'succeed'|'release'), timeout ms (the cap), threshold,
--       generation, probe, base ms (the first open period)
-- -> {state, generation, failures, ms until a probe may start, result, state before, open period ms}
-- result: admit -> 0 refused, 1 admitted (closed), 2 admitted as the probe; fail/succeed -> 1 moved
local key, op = ARGV[1], ARGV[2]
local timeout, threshold = tonumber(ARGV[3]), tonumber(ARGV[4])
local agen, aprobe = tonumber(ARGV[5]), ARGV[6] == '1'
local base = math.min(tonumber(ARGV[7]), timeout)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', key, 'state', 'gen', 'failures', 'opened', 'probe', 'period')
local state, gen, failures = h[1] or 'closed', tonumber(h[2] or '0'), tonumber(h[3] or '0')
local opened, probe = tonumber(h[4] or '0'), tonumber(h[5] or '-1')
local period = math.min(tonumber(h[6] or base), timeout)
local before, result = state, 0
local function move(to)
  local from = state
  state = to
  gen = gen + 1
  probe = -1
  if to == 'open' then
    opened = now
    -- a failed trial waits one base longer, up to the cap (circuit_breaker.py: linear, as Envoy)
    if from == 'half_open' then period = math.min(timeout, period + base) end
  end
  if to == 'closed' then failures = 0; period = base end
  result = 1
end
local function slot_free()
  if state == 'open' then return now - opened >= period end
  return probe >= 0 and (probe == 0 or now - probe >= timeout)
end
if op == 'admit' then
  if state == 'closed' then result = 1
  elseif slot_free() then
    if state == 'half_open' then gen = gen + 1 else move('half_open') end
    probe = now
    result = 2
  end
elseif op == 'fail' and agen == gen then
  if state == 'closed' then
    failures = failures + 1
    if failures >= threshold then move('open') end
  elseif state == 'half_open' and aprobe then move('open') end
elseif op == 'succeed' and agen == gen then
  if state == 'closed' then failures = 0
  elseif state == 'half_open' and aprobe then move('closed') end
elseif op == 'release' and agen == gen and aprobe and state == 'half_open' then
  probe = 0
end
if op ~= 'sync' then
  redis.call('HSET', key, 'state', state, 'gen', gen, 'failures', failures, 'opened', opened, 'probe', probe,
             'period', period)
  redis.call('EXPIRE', key, 86400)
end
local wait = 0
if state == 'open' then wait = math.max(0, opened + period - now)
elseif state == 'half_open' and probe > 0 then wait = math.max(0, probe + timeout - now) end
return {state, gen, failures, wait, result, before, period}
"""

_LOCAL_GENERATIONS = 1 << 40


class RedisBreakerState:
    """A ``BreakerStateStore`` kept in Redis under ``key`` (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        key: str,
        failure_threshold: int,
        recovery_timeout: float,
        base_timeout: float | None = None,
        *,
        sync_interval: float = 0.1,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        redis_down: Callable[[], bool] = lambda: False,
    ) -> None:
        self._redis_down = redis_down
        self._script = client.register_script(BREAKER)
        self._errors = redis_errors()
        self.key = key
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.base_timeout = open_periods_start(base_timeout, recovery_timeout)
        self._base_ms = int(self.base_timeout * 1000)
        self._open_for = self.base_timeout
        self.sync_interval = sync_interval
        self.retry_s = retry_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._failures = 0
        self._wait_until = 0.0
        self._synced = float("-inf")
        self._local: LocalBreakerState | None = None
        self._down_until = 0.0

    # -- Redis round trip ------------------------------------------------------------------------
    def _run(self, op: str, admission: Admission | None = None) -> list[Any] | None:
        now = self._clock()
        if self._local is not None and (now < self._down_until or self._redis_down()):
            return None
        try:
            out = self._script(args=(
                self.key, op, int(self.recovery_timeout * 1000), self.failure_threshold,
                admission.generation if admission else -1, "1" if admission and admission.probe else "0",
                self._base_ms,
            ))  # fmt: skip
        except self._errors as exc:
            if self._local is None:
                log.warning(
                    "Redis unreachable (%s): breaker %s runs on local state", type(exc).__name__, self.key
                )
                self._local = LocalBreakerState(
                    self.failure_threshold, self.recovery_timeout, self.base_timeout)
                self._local._generation = _LOCAL_GENERATIONS
            self._down_until = now + self.retry_s
            return None
        if self._local is not None:
            log.warning("Redis answers again: breaker %s is shared again", self.key)
            self._local = None
        self._state = CircuitState(out[0])
        self._generation, self._failures = int(out[1]), int(out[2])
        wait_ms = int(out[3])
        self._wait_until = now + wait_ms / 1000 if wait_ms > 0 else float("-inf")
        self._open_for = int(out[6]) / 1000
        self._synced = now
        return list(out)

    def _fresh(self, now: float) -> bool:
        return self._local is None and now - self._synced < self.sync_interval

    def _longest_wait(self) -> float:
        """Caps the mirror's wait against clock skew: the open period, or a probe's lease."""
        return self._open_for if self._state is CircuitState.OPEN else self.recovery_timeout

    @staticmethod
    def _moved(out: list[Any]) -> tuple[CircuitState, CircuitState] | None:
        return (CircuitState(out[5]), CircuitState(out[0])) if int(out[4]) == 1 else None

    # -- BreakerStateStore ---------------------------------------------------------------------------
    def admit(self, now: float) -> Admission | float:
        if self._fresh(now):
            if self._state is CircuitState.CLOSED:
                return Admission(self._generation, False)
            if self._wait_until > now:
                return min(self._longest_wait(), self._wait_until - now)
        out = self._run("admit")
        if out is None:
            assert self._local is not None
            return self._local.admit(now)
        result = int(out[4])
        if result == 0:
            return min(self._longest_wait(), max(0.0, self._wait_until - now))
        return Admission(self._generation, result == 2)

    def succeed(self, admission: Admission, now: float) -> tuple[CircuitState, CircuitState] | None:
        if admission.generation >= _LOCAL_GENERATIONS:
            return self._local.succeed(admission, now) if self._local is not None else None
        if (
            self._fresh(now) and self._state is CircuitState.CLOSED and self._failures == 0
            and admission.generation == self._generation
        ):  # fmt: skip
            return None  # nothing to reset: no round trip
        out = self._run("succeed", admission)
        return self._moved(out) if out is not None else None

    def fail(self, admission: Admission, now: float, reason: str) -> tuple[CircuitState, CircuitState] | None:
        if admission.generation >= _LOCAL_GENERATIONS:
            return self._local.fail(admission, now, reason) if self._local is not None else None
        out = self._run("fail", admission)
        if out is None:
            assert self._local is not None
            return self._local.fail(Admission(self._local.generation, admission.probe), now, reason)
        return self._moved(out)

    def release(self, admission: Admission) -> None:
        if admission.generation >= _LOCAL_GENERATIONS:
            if self._local is not None:
                self._local.release(admission)
        elif admission.probe:
            self._run("release", admission)

    def available(self, now: float) -> bool:
        if self._local is None and not self._fresh(now):
            self._run("sync")
        if self._local is not None:
            return self._local.available(now)
        return self._state is CircuitState.CLOSED or self._wait_until <= now

    def retry_after(self, now: float) -> float:
        if self._local is not None:
            return self._local.retry_after(now)
        return 0.0 if self.available(now) else min(self._longest_wait(), self._wait_until - now)

    @property
    def state(self) -> CircuitState:
        """The shared state (refreshed when the mirror is older than ``sync_interval``)."""
        if self._local is None and not self._fresh(self._clock()):
            self._run("sync")
        return self._local.state if self._local is not None else self._state

    @property
    def consecutive_failures(self) -> int:
        return self._local.consecutive_failures if self._local is not None else self._failures

    @property
    def generation(self) -> int:
        return self._local.generation if self._local is not None else self._generation

    @property
    def open_period(self) -> float:
        """The shared escalation: the open period as of the last round trip."""
        return self._local.open_period if self._local is not None else self._open_for


def redis_breaker_factory(
    client: Any, prefix: str = "greenlang:", **options: Any
) -> Callable[[str, int, float, float | None], RedisBreakerState]:
    """``factory(provider_name, failure_threshold, recovery_timeout, base_timeout)`` → a store
    shared by that name (``base_timeout`` None: every open period is ``recovery_timeout``)."""

    def make(
        name: str, failure_threshold: int, recovery_timeout: float, base_timeout: float | None = None
    ) -> RedisBreakerState:
        return RedisBreakerState(
            client, f"{prefix}cb:{name}", failure_threshold, recovery_timeout, base_timeout, **options
        )

    return make
