from __future__ import annotations

import threading

import pytest

from greenlang_llm.ledger.group_commit import GroupCommitter


def test_concurrent_submitters_share_commits_and_get_their_own_results() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        if not batches:
            gate.wait(5)  # hold the first leader so the others queue up behind it
        batches.append(items)
        return [i * 10 for i in items]

    gc: GroupCommitter[int, int] = GroupCommitter(write)
    results: dict[int, list[int]] = {}

    def submit(i: int) -> None:
        results[i] = gc.submit([i, i + 1000])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for _ in range(5000):  # wait (bounded) until the 19 others queued behind the held leader
        if len(gc._pending) >= 19:
            break
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert results == {i: [i * 10, (i + 1000) * 10] for i in range(20)}
    assert gc.commits == len(batches) < 20


def test_a_failed_write_raises_in_every_caller_of_that_batch() -> None:
    def write(items: list[int]) -> list[int]:
        raise RuntimeError("disk full")

    gc: GroupCommitter[int, int] = GroupCommitter(write)
    with pytest.raises(RuntimeError, match="disk full"):
        gc.submit([1])
    assert gc.commits == 0


def test_take_drains_a_large_backlog_in_order_within_max_batch() -> None:
    from collections import deque

    from greenlang_llm.ledger.group_commit import _Ticket

    gc: GroupCommitter[int, int] = GroupCommitter(lambda items: items, max_batch=5)
    # the leader takes from the head of the queue: a deque, so each take is O(1) (pop(0) was O(n))
    assert isinstance(gc._pending, deque)
    tickets = [_Ticket[int, int]([i] * (1 + i % 3)) for i in range(20_000)]
    tickets.insert(7, _Ticket[int, int]([0] * 9))  # larger than max_batch: goes alone
    gc._pending.extend(tickets)
    batches = []
    while gc._pending:
        batches.append(gc._take())
    assert [t for batch in batches for t in batch] == tickets
    assert all(sum(len(t.items) for t in b) <= 5 or len(b) == 1 for b in batches)
    assert [tickets[7]] in batches
