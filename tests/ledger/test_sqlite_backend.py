"""The SQLite ledger: which commits are quick, and reads that never wait for the writer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.ledger import open_ledger
from greenlang_llm.ledger.records import UsageRecord
from greenlang_llm.ledger.sqlite_backend import SQLiteLedger
from greenlang_llm.state.base import BudgetState
from greenlang_llm.state.memory import InProcessBudgetState
from greenlang_llm.state.redis_state import RedisBudgetState

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def rec(i: int) -> UsageRecord:
    return UsageRecord(T0 + i, "p", "t", "a", "m", 1, 2, 3, 0, 0, 1000, 0, 1000, False, f"r{i}")


@pytest.mark.parametrize(
    ("query", "quick"),
    [("", True), ("?synchronous=normal", True), ("?synchronous=full", False), ("?synchronous=extra", False)],
)
def test_commits_are_quick_only_without_a_sync_per_commit(tmp_path: Path, query: str, quick: bool) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/q.db{query}")
    try:
        assert ledger.quick_commits is quick
    finally:
        ledger.close()


def test_quick_writes_need_a_quick_ledger_and_in_process_budget_state(tmp_path: Path) -> None:
    assert InProcessBudgetState.in_process
    assert not RedisBudgetState.in_process
    assert not BudgetState.in_process
    quick = CostTracker(storage=f"sqlite:///{tmp_path}/a.db")
    full = CostTracker(storage=f"sqlite:///{tmp_path}/b.db?synchronous=full")
    try:
        assert quick.quick_writes
        assert not full.quick_writes
    finally:
        quick.close()
        full.close()


def test_a_read_does_not_wait_for_the_write_lock_and_sees_the_last_commit(tmp_path: Path) -> None:
    ledger = SQLiteLedger(str(tmp_path / "r.db"))
    try:
        ledger.insert_many([rec(1)])
        with ledger._lock:  # a writer busy in a transaction
            done: list[int] = []
            reader = threading.Thread(target=lambda: done.append(ledger.count_records()))
            reader.start()
            reader.join(5)
            assert done == [1]
    finally:
        ledger.close()


def test_an_in_memory_ledger_is_one_connection(tmp_path: Path) -> None:
    ledger = SQLiteLedger(":memory:")
    try:
        ledger.insert_many([rec(1)])
        assert ledger.count_records() == 1
        assert ledger._reader is ledger._conn
    finally:
        ledger.close()


def test_a_commit_asked_not_to_wait_raises_ledger_busy_and_writes_nothing(tmp_path: Path) -> None:
    import sqlite3

    from greenlang_llm.ledger.base import LedgerBusy

    ledger = SQLiteLedger(str(tmp_path / "b.db"), timeout=0.2)
    other = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with ledger.commit_without_waiting(), pytest.raises(LedgerBusy):
            ledger.insert_many([rec(1)])
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # outside the block: waits (0.2 s)
            ledger.insert_many([rec(2)])
        other.execute("COMMIT")
        with ledger.commit_without_waiting():
            assert ledger.insert_many([rec(3)]) == [True]
        assert ledger.count_records() == 1
        assert ledger._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 200  # restored
    finally:
        other.close()
        ledger.close()
