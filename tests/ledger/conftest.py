"""Ledger URLs for every backend: SQLite in memory, SQLite file, PostgreSQL in a fresh schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"


def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason to skip."""
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            return None
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(
    params=["sqlite-memory", "sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite-memory":
        yield "sqlite:///:memory:"
    elif request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        reason = pg_reachable()
        if reason:
            pytest.skip(reason)
        schema = f"gl_test_{uuid.uuid4().hex[:12]}"
        yield f"{PG_BASE}?schema={schema}"
        drop_schema(schema)
