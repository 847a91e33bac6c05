"""The shared ledger on PostgreSQL (psycopg 3, imported only when this backend opens).

Durability: a commit returns after the server flushed its WAL (the server's
default ``synchronous_commit=on``), so an acknowledged record survives a crash
of either side. Several processes may write the same ledger: request ids are
unique server-side, rollup rows are upserted in a fixed key order (no
deadlocks), and migrations take an advisory lock so two starting processes do
not race. ``?schema=name`` keeps the tables in their own schema (created if
missing), which the tests use for isolation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .base import (
    INSERT_RECORD,
    INSERT_RECORD_ONCE,
    LedgerStorage,
    record_params,
    rollup_statements,
)
from .migrations import apply_pending
from .records import UsageRecord

__all__ = ["PostgresLedger"]

_MIGRATION_LOCK_KEY = 0x676C5F6C6564  # "gl_led": serialises migrations across processes


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresLedger(LedgerStorage):
    def __init__(self, dsn: str, schema: str | None = None, connect_timeout: float = 10.0) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ValueError(
                "a postgresql:// ledger needs psycopg 3: pip install 'greenlang-llm[postgres]'"
            ) from exc
        self.url = dsn
        self.schema = schema
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(dsn, connect_timeout=int(connect_timeout))
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the PostgreSQL ledger {_redact(dsn)}: {exc}") from exc
        if schema:
            from psycopg import sql as pgsql

            with self._conn.transaction():
                # IF NOT EXISTS is not race-free: replicas starting together on a new schema would
                # collide on pg_namespace's unique index; the migration lock serialises them
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
                self._conn.execute(
                    pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(schema))
                )
            self._conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema)))
            self._conn.commit()
        self._migrate()

    def _migrate(self) -> None:
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            apply_pending(cur, "postgresql")

    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) FROM schema_version")[0][0])

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._conn.transaction():
            return self._conn.execute(_pg(sql), params).fetchall()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock, self._conn.transaction():
            return self._conn.execute(_pg(sql), params).rowcount

    def _write_records(self, records: list[UsageRecord]) -> list[bool]:
        written = [True] * len(records)
        keyed = [i for i, r in enumerate(records) if r.request_id is not None]
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            plain = [record_params(r) for r in records if r.request_id is None]
            if plain:
                cur.executemany(_pg(INSERT_RECORD), plain)
            if keyed:
                cur.executemany(
                    _pg(INSERT_RECORD_ONCE + " RETURNING id"),
                    [record_params(records[i]) for i in keyed],
                    returning=True,
                )
                for i in keyed:
                    written[i] = cur.fetchone() is not None
                    cur.nextset()
            kept = records if all(written) else [r for r, w in zip(records, written, strict=True) if w]
            for sql, params in rollup_statements(kept):
                cur.executemany(_pg(sql), params)
        return written

    def _close(self) -> None:
        with self._lock:
            self._conn.close()


def _redact(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
