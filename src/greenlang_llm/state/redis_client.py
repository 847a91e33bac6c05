"""One way to open Redis for the shared state: short timeouts, a ping, and a one-line error.

Short socket timeouts matter more than usual here: the budget, limit and breaker
calls run on the request path, so a Redis that hangs must turn into an outage
(and the documented local fallback) within a fraction of a second, not stall
every request for the OS's TCP timeout. ``redis`` is imported only here, on first
use, so ``import greenlang_llm`` never loads it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RedisUnavailableError", "connect_redis", "redis_errors"]

DEFAULT_TIMEOUT_S = 0.5


class RedisUnavailableError(ConnectionError):
    """Redis could not be reached at start (the message names the URL without its password)."""


def _safe(url: str) -> str:
    """The URL without credentials, for messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis is not answering" (connection, timeout), not a bug of ours."""
    import redis

    return (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError, OSError)


def connect_redis(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, check: bool = True) -> Any:
    """A ``redis.Redis`` client for ``url``; with ``check`` it must answer PING or this raises."""
    try:
        import redis
    except ImportError:  # pragma: no cover - the extra is not installed
        raise RedisUnavailableError(
            "redis_url is set but the 'redis' package is missing: pip install 'greenlang-llm[redis]'"
        ) from None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        # one immediate retry (a pooled connection gone stale after a Redis restart), no backoff:
        # the caller decides what an outage means, fast
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 1),
        )
    except ValueError as exc:
        raise ValueError(f"redis_url {_safe(url)!r} is not a valid Redis URL: {exc}") from None
    if check:
        try:
            client.ping()
        except Exception as exc:
            client.close()
            raise RedisUnavailableError(
                f"Redis at {_safe(url)} is unreachable: {type(exc).__name__}: {exc}"
            ) from None
    return client
