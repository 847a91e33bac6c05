from __future__ import annotations

import threading

from greenlang_llm.state import InProcessBudgetState, SettleOutcome


def test_reserve_holds_money_until_settled_or_released() -> None:
    s = InProcessBudgetState()
    s.add_spend("t", "2026-01", 60, day=3)
    assert s.try_reserve("r1", "t", "2026-01", 30, 100, now=0, ttl_s=10)
    assert not s.try_reserve("r2", "t", "2026-01", 11, 100, now=0, ttl_s=10)
    assert s.reserved("t", now=0) == 30
    assert s.begin_settle("r1") is SettleOutcome.OPEN
    assert s.reserved("t", now=0) == 30  # still held while the ledger write runs
    s.finish_settle("r1", "t", "2026-01", 25, 3)
    assert (s.spend("t", "2026-01"), s.reserved("t", now=0)) == (85, 0)
    assert s.daily_spend("t", "2026-01") == {3: 85}
    assert s.begin_settle("r1") is SettleOutcome.SETTLED


def test_release_is_a_no_op_the_second_time() -> None:
    s = InProcessBudgetState()
    assert s.try_reserve("r", "t", "p", 5, 10, now=0, ttl_s=10)
    assert s.release("r") is True
    assert s.release("r") is False
    assert s.begin_settle("r") is SettleOutcome.SETTLED


def test_expired_reservations_are_freed_but_not_while_settling() -> None:
    s = InProcessBudgetState()
    s.try_reserve("a", "t", "p", 5, 10, now=0, ttl_s=10)
    s.try_reserve("b", "t", "p", 5, 10, now=0, ttl_s=10)
    assert s.begin_settle("b") is SettleOutcome.OPEN
    assert s.reserved("t", now=11) == 5  # "a" expired, "b" is being committed
    assert s.begin_settle("a") is SettleOutcome.UNKNOWN
    s.abort_settle("b")
    assert s.reserved("t", now=12) == 0


def test_concurrent_reservations_never_pass_the_limit() -> None:
    s = InProcessBudgetState()
    won: list[int] = []

    def grab(i: int) -> None:
        if s.try_reserve(f"r{i}", "t", "p", 7, 1000, now=0, ttl_s=60):
            won.append(i)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1000 // 7
    assert s.reserved("t", now=0) <= 1000


def test_load_spend_replaces_the_view() -> None:
    s = InProcessBudgetState()
    s.add_spend("t", "p", 5)
    s.load_spend({("t", "p", 2): 7, ("t", "p", 3): 1, ("u", "all", None): 4})
    assert (s.spend("t", "p"), s.spend("u", "all"), s.daily_spend("t", "p")) == (8, 4, {2: 7, 3: 1})
