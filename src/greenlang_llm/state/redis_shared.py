"""Everything a gateway replica shares through Redis, opened from one URL.

``open_shared_state(url)`` checks that Redis answers (a clear start-up error if it
does not) and returns the budget state (for ``CostTracker(state=...)``), the
per-key limit buckets (for the key store) and the breaker store factory (for
every ``LLMRouter``), all on one connection pool and one key prefix. The
replica count the budget state's heartbeat keeps is what the rate limits'
outage fallback divides by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .redis_breaker import RedisBreakerState, redis_breaker_factory
from .redis_client import connect_redis
from .redis_limits import RedisLimits, RedisTokenBucket
from .redis_state import RedisBudgetState

__all__ = ["SharedState", "open_shared_state"]


@dataclass(slots=True)
class SharedState:
    redis: Any
    budget: RedisBudgetState
    limits: RedisLimits
    breakers: Callable[[str, int, float, float | None], RedisBreakerState]
    url: str

    def bucket(self, name: str, per_minute: int) -> RedisTokenBucket:
        return self.limits.bucket(name, per_minute)

    def status(self) -> dict[str, Any]:
        """For readiness: ``ok``, ``rebuilding`` (Redis lost its data) or ``unreachable`` (local limits)."""
        if self.budget.degraded or self.limits.degraded:
            redis = "unreachable"
        elif self.budget.in_use and self.budget.rebuilding:
            redis = "rebuilding"
        else:
            redis = "ok"
        return {"redis": redis, "replicas": self.budget.replicas}

    def close(self) -> None:
        """Flush pending limit charges, stop the watcher, close the pool (idempotent, any order)."""
        self.limits.close()
        self.budget.close()
        self.redis.close()


def open_shared_state(url: str, *, prefix: str = "greenlang:", **budget_options: Any) -> SharedState:
    """Connect (raises ``RedisUnavailableError`` with a one-line message) and build the shared pieces."""
    client = connect_redis(url)
    budget = RedisBudgetState(client, prefix=prefix, **budget_options)
    # the budget state's watcher probes Redis in the background; while it says Redis is down the
    # limits and breakers do not probe it on the request path (a hung Redis costs a timeout each)
    down = lambda: budget.degraded  # noqa: E731
    limits = RedisLimits(client, prefix=prefix, replicas=lambda: budget.replicas, redis_down=down)
    breakers = redis_breaker_factory(client, prefix, redis_down=down)
    return SharedState(client, budget, limits, breakers, url)
