"""Ledger writes, group-committed: one transaction per flush, then the releases.

A durable write costs a disk or database round trip, so finished requests only queue their
record here (``Settlement`` in ``settlement.py`` is the one caller). One background flusher
waits a few milliseconds for company, then commits everything queued as one
``CostTracker.track_many`` transaction (a group commit: one sync for many requests), and
frees each request's reservation only after its record is durable — for that moment the
cost counts twice, so budgets err on the safe side, never over. ``request_id`` makes a write
idempotent. ``drain()`` waits for the queue (tests, shutdown). A caller that must not
acknowledge anything before it is durable asks ``submit(..., wait=True)`` for a future that
resolves when its batch has been written (and fails if its record could not be).

Where the commit runs depends on the tracker. When its writes are quick
(``CostTracker.quick_writes``: a local SQLite ledger — the default — in WAL mode with
``synchronous=normal`` and in-process budget state, so a commit is a write into the OS page
cache and no checkpoint or sync ever runs inside it), the batch is committed on the event
loop itself, by the flusher task: a thread hand-off costs more CPU than such a commit, and
the extra runnable thread per request cost a quarter of the gateway's throughput at
concurrency 10 (docs/benchmarks.md). Such a commit never waits for SQLite's lock: if another
process holds it (``LedgerBusy``), that batch goes to the writer thread instead. Anything
slower (PostgreSQL, Redis state, ``synchronous=full``) always goes to the writer thread.

The writer is one dedicated thread fed through a ``queue.SimpleQueue`` and answering with
``call_soon_threadsafe``, not a ``ThreadPoolExecutor``: with durable replies every batch is
on some reply's critical path, and ``executor.submit`` plus the future chaining behind
``run_in_executor`` cost about half again as much CPU per hand-off (docs/benchmarks.md,
"What the numbers say"). The thread is a daemon so a writer nobody closed cannot hold the
process open; an exit hook still lets it finish the batches already handed over.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..ledger.base import LedgerBusy

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker, Reservation

__all__ = ["FLUSH_WINDOW_S", "LedgerWriter"]

logger = logging.getLogger(__name__)

FLUSH_WINDOW_S = 0.005
"""How long a record may wait for company before the write starts (its reservation is held)."""

Item = tuple["Reservation | None", "dict[str, Any] | None"]
Job = tuple[list[Item], asyncio.AbstractEventLoop, "asyncio.Future[set[str | None]]"]


def _resolve(future: asyncio.Future[set[str | None]], outcome: set[str | None] | BaseException) -> None:
    """Answer the flusher waiting for a batch the writer thread wrote (on the flusher's loop)."""
    if future.done():  # the flusher was cancelled while the thread wrote
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _close_at_exit(ref: weakref.ref[LedgerWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer.close()


class LedgerWriter:
    """Queue of (reservation, record) pairs, committed in batches: on the loop if quick, else by a thread."""

    def __init__(
        self, tracker: CostTracker, window_s: float = FLUSH_WINDOW_S, inline: bool | None = None
    ) -> None:
        self.tracker = tracker
        self.window_s = window_s
        self.inline = tracker.quick_writes if inline is None else inline
        """Commit on the event loop (quick writes) rather than on the writer thread."""
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._queue: list[Item] = []
        self._waiters: list[tuple[asyncio.Future[None], str | None]] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(
        self, reservation: Reservation | None, record: dict[str, Any] | None, wait: bool = False
    ) -> asyncio.Future[None] | None:
        """Queue a finished request: its record (``track_usage`` arguments) and/or its reservation.

        With ``wait``, returns a future that completes once the record is durable (or fails).
        """
        if reservation is None and record is None:
            return None
        loop = asyncio.get_running_loop()
        self._queue.append((reservation, record))
        future: asyncio.Future[None] | None = None
        if wait:
            future = loop.create_future()
            self._waiters.append((future, record["request_id"] if record else None))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return future

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self._flusher is not None else 0)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        cancelled = False
        try:
            # The gather window: under load one commit carries many records (and one hand-off
            # to the writer thread, which costs a thread wake-up and GIL traffic on the loop).
            # A caller waiting for durability is not made to wait for company: records that
            # arrive while the writer is busy form the next batch anyway (group commit).
            await asyncio.sleep(0 if self._waiters else self.window_s)
            while self._queue:
                batch, self._queue = self._queue, []
                waiters, self._waiters = self._waiters, []
                failed: set[str | None] | BaseException
                try:
                    now = self._write_now(batch) if self.inline and not self._closed else None
                    if now is not None:
                        failed = now
                    elif self._closed:  # a late record still gets its try, and its hold is freed, here
                        failed = self._write(batch)
                    else:  # a slow ledger, or a quick one whose lock another process holds
                        failed = await self._hand_over(batch, loop)
                except BaseException as exc:  # the write crashed, or this task was cancelled
                    failed = exc
                    cancelled = isinstance(exc, asyncio.CancelledError)
                for future, request_id in waiters:
                    if future.done():
                        continue
                    if isinstance(failed, BaseException) or request_id in failed:
                        future.set_exception(OSError(f"ledger write failed for request {request_id}"))
                    else:
                        future.set_result(None)
                if isinstance(failed, BaseException):
                    raise failed
        finally:
            self._flusher = None
            if self._queue and not cancelled:  # records that came while a failed batch was written
                self._flusher = loop.create_task(self._flush())

    def _hand_over(
        self, batch: list[Item], loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[set[str | None]]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="greenlang-ledger", daemon=True)
            self._thread.start()
            atexit.register(_close_at_exit, weakref.ref(self))
        done: asyncio.Future[set[str | None]] = loop.create_future()
        self._jobs.put((batch, loop, done))
        return done

    def _run(self) -> None:
        """The writer thread: one batch at a time, each answer posted back to its loop."""
        while (job := self._jobs.get()) is not None:
            batch, loop, done = job
            outcome: set[str | None] | BaseException
            try:
                outcome = self._write(batch)
            except BaseException as exc:
                outcome = exc
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, done, outcome)

    def _write(self, batch: list[Item]) -> set[str | None]:
        """One transaction for the batch, then free its reservations (writer thread, or after close).

        Returns the request ids whose record could not be written.
        """
        failed = self._try_write(batch)
        assert failed is not None  # (None only under commit_without_waiting)
        return failed

    def _write_now(self, batch: list[Item]) -> set[str | None] | None:
        """``_write`` on the event loop, or None — nothing written, nothing freed — if the ledger's
        lock is held by another writer (another process on the same SQLite file): waiting for it
        here would stop every request, so the batch goes to the writer thread instead."""
        with self.tracker.ledger.commit_without_waiting():
            return self._try_write(batch)

    def _try_write(self, batch: list[Item]) -> set[str | None] | None:
        """None: ``LedgerBusy`` (raised only under ``commit_without_waiting``) — nothing freed."""
        records = [r for _, r in batch if r is not None]
        failed: set[str | None] = set()
        busy = False
        try:
            if records:
                try:
                    self.tracker.track_many(records)
                except LedgerBusy:
                    busy = True
                    return None
                except Exception:  # one bad record must not cost the others: write them one by one
                    logger.exception("ledger batch of %d failed; writing records one by one", len(records))
                    for record in records:
                        try:
                            self.tracker.track_usage(**record)
                        except LedgerBusy:
                            busy = True  # the rest (and these again: writes are idempotent) on the thread
                            return None
                        except Exception:
                            failed.add(record["request_id"])
                            logger.exception("ledger write failed for request %s", record["request_id"])
        finally:
            held = [reservation for reservation, _ in batch if reservation is not None]
            if held and not busy:  # one call for the batch: one round trip for a shared (Redis) state
                try:
                    self.tracker.release_many(held)
                except Exception:
                    logger.exception("releasing %d reservations failed", len(held))
        return failed

    async def drain(self) -> None:
        """Wait until every queued write has landed."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    def close(self) -> None:
        """Stop the writer thread (after ``drain``); a batch already handed over is written first."""
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
