"""The embedded ledger: one SQLite file in WAL mode.

Durability (the default, ``synchronous=NORMAL`` with WAL): a committed
transaction is in the WAL file before ``track_usage`` returns, so killing the
process — even ``kill -9`` — loses nothing acknowledged. A power loss or OS
crash may lose the last transactions before the next checkpoint (never
corrupts the file). ``sqlite:///file.db?synchronous=full`` fsyncs the WAL on
every commit and survives power loss too, at a lower single-writer rate; group
commit shares that fsync between concurrent writers.

One connection, guarded by a lock, writes (``check_same_thread`` off); SQLite
allows one writer at a time anyway, and group commit keeps that writer busy with
large transactions. Reads of a file ledger go through a second connection with its
own lock, so a long report never holds up a write (WAL readers see the last commit).

With ``synchronous=normal`` a commit is a write into the OS page cache, with no
sync (``quick_commits``: the gateway commits on its event loop). The exception is
SQLite's automatic checkpoint (every ~1,000 WAL pages, about every 170 single-record
commits), which copies the WAL into the database file and syncs it inside one commit:
a pause of a few milliseconds on a fast disk. A checkpoint on another connection
cannot replace it: with a steady stream of commits it never catches up, and the WAL
would grow without bound.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .base import (
    INSERT_RECORD,
    INSERT_RECORD_ONCE,
    LedgerBusy,
    LedgerStorage,
    record_params,
    rollup_statements,
)
from .migrations import apply_pending
from .records import UsageRecord

__all__ = ["SQLiteLedger"]


class SQLiteLedger(LedgerStorage):
    def __init__(self, path: str, synchronous: str = "normal", timeout: float = 30.0) -> None:
        super().__init__()
        self.path = path
        self.url = "sqlite:///" + path
        memory = path == ":memory:"
        if not memory:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise ValueError(f"ledger directory does not exist: {parent} (for sqlite:///{path})")
        self._lock = threading.Lock()
        self._no_wait = threading.local()
        self._busy_ms = int(timeout * 1000)
        self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL" if not memory else "PRAGMA journal_mode=MEMORY")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA cache_size=-65536")
        self.quick_commits = synchronous.lower() in ("off", "normal")
        self._migrate()
        self._reader, self._read_lock = self._conn, self._lock  # ":memory:" is one connection's own
        if not memory:
            reader = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA synchronous={synchronous.upper()}")  # (what a PRAGMA read reports)
            reader.execute("PRAGMA query_only=ON")
            self._reader, self._read_lock = reader, threading.Lock()

    def _migrate(self) -> None:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                apply_pending(cur, "sqlite")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) FROM schema_version")[0][0])

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(sql, params)
                count = cur.rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return count

    @contextlib.contextmanager
    def commit_without_waiting(self) -> Iterator[None]:
        self._no_wait.active = True
        try:
            yield
        finally:
            self._no_wait.active = False

    def _begin(self, cur: sqlite3.Cursor) -> None:
        """``BEGIN IMMEDIATE`` (takes the write lock), or ``LedgerBusy`` at once if asked not to wait."""
        if not getattr(self._no_wait, "active", False):
            cur.execute("BEGIN IMMEDIATE")
            return
        cur.execute("PRAGMA busy_timeout=0")
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # another writer
                raise LedgerBusy(str(exc)) from None
            raise
        finally:
            cur.execute(f"PRAGMA busy_timeout={self._busy_ms}")

    def _write_records(self, records: list[UsageRecord]) -> list[bool]:
        written = [True] * len(records)
        with self._lock:
            cur = self._conn.cursor()
            self._begin(cur)
            try:
                cur.executemany(INSERT_RECORD, [record_params(r) for r in records if r.request_id is None])
                for i, r in enumerate(records):
                    if r.request_id is not None:
                        cur.execute(INSERT_RECORD_ONCE, record_params(r))
                        written[i] = cur.rowcount == 1
                kept = records if all(written) else [r for r, w in zip(records, written, strict=True) if w]
                for sql, params in rollup_statements(kept):
                    cur.executemany(sql, params)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return written

    def _close(self) -> None:
        with self._lock:
            if self._reader is not self._conn:
                with self._read_lock:
                    self._reader.close()
            self._conn.close()  # the last connection: SQLite checkpoints the WAL into the file
