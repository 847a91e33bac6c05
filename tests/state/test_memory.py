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


class NaiveHolds:
    """The rules written plainly: every check sums the live holds and drops the expired ones."""

    def __init__(self) -> None:
        self.holds: dict[str, tuple[str, int, float, bool]] = {}  # id -> tenant, amount, expires, settling

    def reserved(self, tenant: str, now: float) -> int:
        for rid, (_, _, expires, settling) in list(self.holds.items()):
            if expires <= now and not settling:
                del self.holds[rid]
        return sum(a for t, a, _, _ in self.holds.values() if t == tenant)


def test_held_totals_match_summing_every_hold_through_random_operations() -> None:
    import random

    rng = random.Random(7)
    s = InProcessBudgetState()
    ref = NaiveHolds()
    now = 0.0
    for step in range(5000):
        now += rng.choice([0.0, 0.1, 1.0, 3.0])
        rid = f"r{rng.randrange(60)}"
        tenant = rng.choice(["a", "b"])
        op = rng.random()
        if op < 0.4:
            ttl = rng.choice([1.0, 5.0, 20.0])
            amount = rng.randrange(0, 50)  # zero too: a free model's worst case
            if ref.reserved(tenant, now) + amount <= 10_000:
                limit = 10_000 + s.spend(tenant, "p")
                assert s.try_reserve(rid, tenant, "p", amount, limit, now=now, ttl_s=ttl)
                ref.holds[rid] = (tenant, amount, now + ttl, False)
        elif op < 0.55:
            outcome = s.begin_settle(rid)
            held = ref.holds.get(rid)
            if held is not None and not held[3]:
                assert outcome is SettleOutcome.OPEN
                ref.holds[rid] = (*held[:3], True)
        elif op < 0.7:
            held = ref.holds.get(rid)
            if held is not None and held[3]:
                if rng.random() < 0.5:
                    s.abort_settle(rid)
                    ref.holds[rid] = (*held[:3], False)
                else:
                    s.finish_settle(rid, held[0], "p", held[1], None)
                    del ref.holds[rid]
        else:
            held = ref.holds.get(rid)
            freed = s.release(rid)
            if held is not None and not held[3]:
                assert freed
                del ref.holds[rid]
        for t in ("a", "b"):
            assert s.reserved(t, now) == ref.reserved(t, now), f"step {step}, tenant {t}"


def test_the_expiry_heap_stays_proportional_to_the_open_holds() -> None:
    s = InProcessBudgetState()
    for i in range(20_000):
        assert s.try_reserve(f"r{i}", "t", "p", 1, 10**9, now=0, ttl_s=600)
        assert s.release(f"r{i}")
    assert s.reserved("t", now=0) == 0
    assert len(s._due) <= 2 * len(s._holds) + 1025


def test_the_same_id_reserved_again_holds_only_the_newer_amount() -> None:
    s = InProcessBudgetState()
    assert s.try_reserve("r", "t", "p", 5, 100, now=0, ttl_s=10)
    assert s.try_reserve("r", "t", "p", 7, 100, now=1, ttl_s=10)
    assert s.reserved("t", now=1) == 7
    assert s.reserved("t", now=10.5) == 7  # the older hold's expiry does not drop the newer one
    assert s.reserved("t", now=11) == 0


def test_zero_amount_holds_come_and_go_without_disturbing_the_total() -> None:
    s = InProcessBudgetState()
    assert s.try_reserve("a", "t", "p", 0, 10, now=0, ttl_s=10)
    assert s.try_reserve("b", "t", "p", 0, 10, now=0, ttl_s=10)
    assert s.try_reserve("c", "t", "p", 4, 10, now=0, ttl_s=20)
    assert s.release("a")
    assert s.release("b")
    assert s.reserved("t", now=0) == 4
    assert s.try_reserve("d", "t", "p", 0, 10, now=0, ttl_s=5)
    assert s.reserved("t", now=15) == 4  # "d" expired
    assert s.release("c")
    assert s.reserved("t", now=15) == 0
