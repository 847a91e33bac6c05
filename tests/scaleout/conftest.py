"""Scale-out fixtures: a fresh PostgreSQL schema and a Redis key prefix per test (both cleaned up).

Puts this directory on ``sys.path`` for ``scaleout_support``. Skips, saying why, when PostgreSQL
or Redis does not answer on loopback.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from scaleout_support import PG_BASE, REDIS_BASE  # noqa: E402


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """(ledger URL, schema name) of a schema that exists only for this test."""
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            pass
    except Exception as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}")
    schema = f"gl_scale_{uuid.uuid4().hex[:10]}"
    yield f"{PG_BASE}?schema={schema}", schema
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def redis_db() -> Iterator[Any]:
    """A client on Redis database 0 (skips if Redis is unreachable)."""
    from greenlang_llm.state.redis_client import RedisUnavailableError, connect_redis

    try:
        client = connect_redis(f"{REDIS_BASE}/0")
    except RedisUnavailableError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {exc}")
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_db: Any) -> Iterator[str]:
    prefix = f"glscale:{uuid.uuid4().hex[:10]}:"
    yield prefix
    keys = list(redis_db.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_db.delete(*keys)
