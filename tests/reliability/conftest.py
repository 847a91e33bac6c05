"""Reliability suite fixtures; puts this directory on ``sys.path`` for ``reliability_support``.

Counts are reduced in CI; ``RELIABILITY_SOAK=1`` (or ``python tests/reliability/soak.py``)
runs the issue's full counts. See docs/reliability.md.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_unreachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            return None
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}"


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh ledger: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    schema = f"gl_rel_{uuid.uuid4().hex[:12]}"
    yield f"{PG_BASE}?schema={schema}"
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
