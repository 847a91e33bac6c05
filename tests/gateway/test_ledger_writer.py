"""LedgerWriter: batches reach one writer thread; waiters learn durability; close stops the thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from greenlang_llm.gateway.ledger_writer import LedgerWriter


class RecordingTracker:
    """Stands in for CostTracker: records what was written, from which thread; can refuse ids."""

    quick_writes = False
    ledger = SimpleNamespace(commit_without_waiting=contextlib.nullcontext)

    def __init__(self, refuse: set[str] | None = None, crash_batches: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.single: list[str] = []
        self.released: list[Any] = []
        self.threads: set[str] = set()
        self.refuse = refuse or set()
        self.crash_batches = crash_batches

    def track_many(self, records: list[dict[str, Any]]) -> int:
        self.threads.add(threading.current_thread().name)
        if self.crash_batches or any(r["request_id"] in self.refuse for r in records):
            raise ValueError("refused")
        self.batches.append([r["request_id"] for r in records])
        return len(records)

    def track_usage(self, **record: Any) -> None:
        if record["request_id"] in self.refuse:
            raise ValueError("refused")
        self.single.append(record["request_id"])

    def release_many(self, held: list[Any]) -> None:
        self.released.extend(held)


def record(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "provider": "p", "tenant_id": "t", "usage": None}


async def test_a_waiter_resolves_once_its_record_was_written_by_the_writer_thread() -> None:
    tracker = RecordingTracker()
    writer = LedgerWriter(tracker)  # type: ignore[arg-type]
    try:
        future = writer.submit("hold-1", record("r1"), wait=True)
        assert future is not None
        await asyncio.wait_for(future, 5)
        assert tracker.batches == [["r1"]]
        assert tracker.released == ["hold-1"]
        assert tracker.threads == {"greenlang-ledger"}
    finally:
        await writer.drain()
        writer.close()


async def test_records_queued_together_are_one_transaction() -> None:
    tracker = RecordingTracker()
    writer = LedgerWriter(tracker, window_s=0.01)  # type: ignore[arg-type]
    try:
        for i in range(5):
            writer.submit(None, record(f"r{i}"))
        await writer.drain()
        assert tracker.batches == [["r0", "r1", "r2", "r3", "r4"]]
    finally:
        writer.close()


async def test_a_bad_record_fails_only_its_own_waiter() -> None:
    tracker = RecordingTracker(refuse={"bad"})
    writer = LedgerWriter(tracker)  # type: ignore[arg-type]
    try:
        good = writer.submit(None, record("good"), wait=True)
        bad = writer.submit(None, record("bad"), wait=True)
        assert good is not None
        assert bad is not None
        await asyncio.wait_for(good, 5)
        with pytest.raises(OSError, match="bad"):
            await asyncio.wait_for(bad, 5)
        assert tracker.single == ["good"]  # written one by one after the batch failed
    finally:
        await writer.drain()
        writer.close()


async def test_after_close_a_late_record_is_written_on_the_loop_and_its_hold_freed() -> None:
    tracker = RecordingTracker()
    writer = LedgerWriter(tracker)  # type: ignore[arg-type]
    first = writer.submit(None, record("r1"), wait=True)
    assert first is not None
    await asyncio.wait_for(first, 5)
    await writer.drain()
    writer.close()
    assert writer._thread is None
    late = writer.submit("hold-late", record("late"), wait=True)
    assert late is not None
    await asyncio.wait_for(late, 5)
    assert tracker.batches == [["r1"], ["late"]]
    assert tracker.released == ["hold-late"]
    assert writer._thread is None


class FailingOnceTracker(RecordingTracker):
    """The first batch waits for ``gate`` on the writer thread, then the whole write crashes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.crashed = False

    def track_many(self, records: list[dict[str, Any]]) -> int:
        if not self.crashed:
            self.crashed = True
            self.entered.set()
            self.gate.wait(5)
            raise SystemError("writer crashed")  # not one bad record: the batch as a whole
        return super().track_many(records)


async def test_records_queued_behind_a_failed_batch_are_still_written() -> None:
    tracker = FailingOnceTracker()
    writer = LedgerWriter(tracker)  # type: ignore[arg-type]
    writer._write = lambda batch: tracker.track_many([r for _, r in batch if r]) and set()  # type: ignore[method-assign]
    doomed = writer.submit(None, record("a"), wait=True)
    assert doomed is not None
    assert await asyncio.to_thread(tracker.entered.wait, 5)
    behind = writer.submit(None, record("b"), wait=True)  # queued while batch "a" is on the thread
    assert behind is not None
    tracker.gate.set()
    with pytest.raises(OSError, match="request a"):
        await asyncio.wait_for(doomed, 5)
    await asyncio.wait_for(behind, 5)  # hung forever before: no flusher was left for it
    assert tracker.batches == [["b"]]
    writer.close()


def test_closing_a_writer_that_never_wrote_starts_no_thread() -> None:
    writer = LedgerWriter(RecordingTracker())  # type: ignore[arg-type]
    writer.close()
    assert writer._thread is None


class QuickTracker(RecordingTracker):
    quick_writes = True


async def test_quick_writes_commit_on_the_event_loop_and_start_no_thread() -> None:
    tracker = QuickTracker()
    writer = LedgerWriter(tracker)  # type: ignore[arg-type]
    assert writer.inline
    future = writer.submit("hold-1", record("r1"), wait=True)
    assert future is not None
    await asyncio.wait_for(future, 5)
    assert tracker.batches == [["r1"]]
    assert tracker.released == ["hold-1"]
    assert tracker.threads == {threading.current_thread().name}
    assert writer._thread is None
    writer.close()


async def test_slow_writes_go_to_the_writer_thread_and_inline_can_be_forced() -> None:
    assert not LedgerWriter(RecordingTracker()).inline  # type: ignore[arg-type]
    tracker = QuickTracker(refuse={"bad"})
    writer = LedgerWriter(tracker, inline=False)  # type: ignore[arg-type]
    bad = writer.submit(None, record("bad"), wait=True)
    assert bad is not None
    with pytest.raises(OSError, match="bad"):
        await asyncio.wait_for(bad, 5)
    assert tracker.threads == {"greenlang-ledger"}
    await writer.drain()
    writer.close()


async def test_a_quick_ledger_locked_by_another_process_goes_to_the_thread_without_stalling_the_loop(
    tmp_path: Path,
) -> None:
    """Another writer on the same SQLite file: the loop must not wait for its lock (30 s timeout)."""
    from greenlang_llm.cost_tracker import CostTracker

    db = tmp_path / "shared.db"
    tracker = CostTracker(storage=f"sqlite:///{db}")
    writer = LedgerWriter(tracker)
    assert writer.inline
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        done = writer.submit(None, usage_record("held-up"), wait=True)
        assert done is not None
        ticks = 0
        for _ in range(20):  # the loop keeps turning while the write waits on the thread
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20
        assert not done.done()
        assert writer._thread is not None  # handed over
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(done, 10)
    assert tracker.get_summary().total_requests == 1
    quick = writer.submit(None, usage_record("after"), wait=True)  # the lock is free: inline again
    assert quick is not None
    await asyncio.wait_for(quick, 10)
    assert tracker.get_summary().total_requests == 2
    await writer.drain()
    writer.close()
    tracker.close()


def usage_record(request_id: str) -> dict[str, Any]:
    from greenlang_llm import TokenUsage

    return {
        "request_id": request_id, "provider": "openai", "tenant_id": "t", "agent_id": "a",
        "model_id": "gpt-4o-mini", "usage": TokenUsage(10, 5, 15),
    }  # fmt: skip
