"""Group commit: concurrent writers share one transaction and one sync.

Each caller enqueues its rows and waits. Whoever finds no commit in progress
becomes the leader: it takes *everything* queued so far, writes it in one
transaction, then wakes the waiters whose rows it committed. While a leader
is busy, new rows pile up for the next leader. So with N threads one commit
carries about N callers' rows, yet every caller returns only after its own
rows are durable — the promise of ``track_usage`` is kept without a
background thread or a timer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.done = False
        self.result: list[R] = []
        self.error: BaseException | None = None


class GroupCommitter(Generic[T, R]):
    """Calls ``write(batch) -> results`` (one result per item, same order) for merged batches."""

    def __init__(self, write: Callable[[list[T]], list[R]], max_batch: int = 50_000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[_Ticket[T, R]] = deque()  # FIFO: the leader takes from the head
        self._leader = False
        self._last_tickets = 0
        self.commits = 0
        """How many transactions were written (for benchmarks and tests)."""

    def submit(self, items: Sequence[T]) -> list[R]:
        ticket: _Ticket[T, R] = _Ticket(items)
        with self._cond:
            self._pending.append(ticket)
            while not ticket.done:
                if self._leader:
                    self._cond.wait()
                    continue
                self._leader = True
                if self._last_tickets > 1:
                    # Others were writing a moment ago: let them enqueue before we take the batch
                    # (one GIL hand-off, no timer), so one commit carries more callers.
                    self._cond.release()
                    time.sleep(0)
                    self._cond.acquire()
                batch = self._take()
                self._last_tickets = len(batch)
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._leader = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _take(self) -> list[_Ticket[T, R]]:
        taken: list[_Ticket[T, R]] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0].items) <= self._max_batch):
            ticket = self._pending.popleft()  # O(1); a list's pop(0) made a big backlog quadratic
            taken.append(ticket)
            size += len(ticket.items)
        return taken

    def _run(self, batch: list[_Ticket[T, R]]) -> None:
        rows = [item for ticket in batch for item in ticket.items]
        try:
            results = self._write(rows)
        except BaseException as exc:  # every caller of this batch learns of the failure
            for ticket in batch:
                ticket.error = exc
                ticket.done = True
            return
        self.commits += 1
        pos = 0
        for ticket in batch:
            n = len(ticket.items)
            ticket.result = results[pos : pos + n]
            ticket.done = True
            pos += n
