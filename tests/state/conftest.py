"""Redis fixtures for the shared-state tests: a real Redis, a unique key prefix per test, cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> Any:
    from greenlang_llm.state.redis_client import RedisUnavailableError, connect_redis

    try:
        return connect_redis(REDIS_URL)
    except RedisUnavailableError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {exc}")


def drop_prefix(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_client() -> Iterator[Any]:
    client = redis_or_skip()
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    p = f"gltest:{uuid.uuid4().hex[:10]}:"
    yield p
    drop_prefix(redis_client, p)


@pytest.fixture
def lose_data(redis_client: Any, prefix: str) -> Any:
    """Drop every key of this test's prefix: what FLUSHALL does to our data, without touching others'."""
    return lambda: drop_prefix(redis_client, prefix)
