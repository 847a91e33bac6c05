"""RedisBudgetState on a real Redis: the in-process semantics, shared by several instances ("replicas").

Each test has its own key prefix (see conftest.py); the watcher thread is off (``watch=False``) and
driven by hand through ``_check_epoch()``, so nothing depends on timing.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm._types import TokenUsage
from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.state import SettleOutcome
from greenlang_llm.state.redis_state import RedisBudgetState

pytestmark = pytest.mark.redis


def make(client: Any, prefix: str, **kw: Any) -> RedisBudgetState:
    s = RedisBudgetState(client, prefix=prefix, watch=False, grace_s=kw.pop("grace_s", 0.0), **kw)
    s.load_spend({})
    return s


def test_reserve_holds_money_until_settled_or_released(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
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


def test_release_is_a_no_op_the_second_time(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
    assert s.try_reserve("r", "t", "p", 5, 10, now=0, ttl_s=10)
    assert s.release("r") is True
    assert s.release("r") is False
    assert s.begin_settle("r") is SettleOutcome.SETTLED


def test_expired_holds_are_freed_and_a_settling_one_gets_another_ttl(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
    s.try_reserve("a", "t", "p", 5, 10, now=0, ttl_s=10)
    s.try_reserve("b", "t", "p", 5, 10, now=0, ttl_s=10)
    assert s.begin_settle("b") is SettleOutcome.OPEN
    assert s.reserved("t", now=11) == 5  # "a" expired, "b" is being committed (lease now 20)
    assert s.begin_settle("a") is SettleOutcome.UNKNOWN
    assert s.reserved("t", now=21) == 0  # a replica that died mid-commit frees it too, one TTL later


def test_two_replicas_share_one_budget_under_contention(redis_client: Any, prefix: str) -> None:
    replicas = [make(redis_client, prefix), make(redis_client, prefix)]
    won: list[int] = []

    def grab(t: int) -> None:  # 20 threads x 10 attempts (not 200 connections at once on a busy host)
        for i in range(t, 200, 20):
            if replicas[i % 2].try_reserve(f"r{i}", "t", "p", 7, 1000, now=0, ttl_s=60):
                won.append(i)

    threads = [threading.Thread(target=grab, args=(t,)) for t in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1000 // 7
    assert replicas[0].reserved("t", now=0) == 7 * len(won)
    # one replica's hold is settled by the other one's view of it (the hold lives in Redis)
    rid = f"r{won[0]}"
    assert replicas[1 - won[0] % 2].begin_settle(rid) is SettleOutcome.OPEN


def test_a_dead_replicas_holds_expire_for_the_others(redis_client: Any, prefix: str) -> None:
    dead, alive = make(redis_client, prefix), make(redis_client, prefix)
    assert dead.try_reserve("x", "t", "p", 90, 100, now=0, ttl_s=30)
    assert not alive.try_reserve("y", "t", "p", 20, 100, now=29, ttl_s=30)
    assert alive.try_reserve("y", "t", "p", 20, 100, now=30, ttl_s=30)


def test_lost_data_refuses_until_rebuilt_then_restores_open_holds(
    redis_client: Any, prefix: str, lose_data: Any
) -> None:
    ledger_total = {"v": 40}
    a, b = make(redis_client, prefix), make(redis_client, prefix)
    for s in (a, b):
        s.bind_loader(lambda s=s: s.load_spend({("t", "p", 1): ledger_total["v"]}))
    a.add_spend("t", "p", 40, 1)
    assert b.try_reserve("held", "t", "p", 30, 100, now=0, ttl_s=60)
    lose_data()  # what FLUSHALL does to our keys
    assert not a.try_reserve("r", "t", "p", 1, 100, now=0, ttl_s=60)  # refused while not rebuilt
    a.add_spend("t", "p", 5, 1)  # a commit landing during the loss still counts (ledger has it too)
    ledger_total["v"] = 45
    a._check_epoch()  # a notices, takes the lock, rebuilds from "the ledger"
    b._check_epoch()  # b adopts the new epoch and puts its open hold back
    assert a.spend("t", "p") == 50  # 45 from the ledger + 5 counted twice: over, never under
    assert a.reserved("t", now=0) == 30
    assert not a.try_reserve("r", "t", "p", 21, 100, now=0, ttl_s=60)
    assert a.try_reserve("r", "t", "p", 20, 100, now=0, ttl_s=60)


def test_reservations_wait_for_the_grace_after_a_rebuild(
    redis_client: Any, prefix: str, lose_data: Any
) -> None:
    s = make(redis_client, prefix, grace_s=600.0)
    s.bind_loader(lambda: s.load_spend({}))
    lose_data()
    s._check_epoch()
    assert not s.try_reserve("r", "t", "p", 1, 100, now=0, ttl_s=60)  # other replicas may still restore
    redis_client.delete(f"{prefix}resume")
    assert s.try_reserve("r", "t", "p", 1, 100, now=0, ttl_s=60)


def test_a_live_data_set_is_adopted_not_replaced(redis_client: Any, prefix: str) -> None:
    a = make(redis_client, prefix)
    a.add_spend("t", "p", 70)
    late = RedisBudgetState(redis_client, prefix=prefix, watch=False)
    late.load_spend({("t", "p", None): 10})  # a stale ledger snapshot must not overwrite live totals
    assert late.spend("t", "p") == 70


def test_outage_falls_back_to_this_replicas_share_and_replays_later(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make(redis_client, prefix)
    s.add_spend("t", "p", 200)
    assert s.try_reserve("seen", "t", "p", 100, 1000, now=0, ttl_s=60)  # last seen: 200 + 100 of 1000
    s._replicas = 2

    def down(*args: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(s, "_call", down)
    monkeypatch.setattr(s._redis, "get", down)
    assert s.try_reserve("a", "t", "p", 300, 1000, now=0, ttl_s=60)  # share = (1000-300)/2 = 350
    assert s.degraded
    assert not s.try_reserve("b", "t", "p", 51, 1000, now=0, ttl_s=60)
    assert not s.try_reserve("c", "u", "p", 1, 1000, now=0, ttl_s=60)  # never seen: refused
    assert s.begin_settle("a") is SettleOutcome.OPEN
    s.finish_settle("a", "t", "p", 250, None)
    assert s.spend("t", "p") == 450
    assert s.release("seen") is True
    monkeypatch.undo()  # Redis answers again
    s._check_epoch()
    assert not s.degraded
    assert s.spend("t", "p") == 450  # the queued spend reached Redis
    assert s.reserved("t", now=0) == 0  # and the queued release too


def test_cost_tracker_rebuilds_month_to_date_from_the_ledger(
    redis_client: Any, prefix: str, tmp_path: Path, lose_data: Any
) -> None:
    clock = lambda: datetime(2026, 11, 20, 12, tzinfo=UTC)  # noqa: E731
    usage = TokenUsage(10, 10, 20, 0.1, 0.2, 0.3)
    state = RedisBudgetState(redis_client, prefix=prefix, watch=False, grace_s=0.0)
    tracker = CostTracker(storage=f"sqlite:///{tmp_path}/l.db", clock=clock, state=state)
    tracker.set_budget("acme", 1.0, hard_limit=True)
    tracker.track_usage("p", "acme", "a", "m", usage, request_id="one")
    lose_data()
    with pytest.raises(Exception, match="exhausted"):
        tracker.reserve("acme", 0.1)  # refused while rebuilding: conservative
    state._check_epoch()
    assert tracker.check_budget("acme").spent_usd == pytest.approx(0.3)
    r = tracker.reserve("acme", 0.7)
    with pytest.raises(Exception, match="exhausted"):
        tracker.reserve("acme", 0.01)
    assert tracker.commit(r, usage, provider="p", request_id="two")
    assert tracker.check_budget("acme").spent_usd == pytest.approx(0.6)
    tracker.close()


def test_the_watcher_keeps_what_it_last_saw_current_for_the_outage_share(
    redis_client: Any, prefix: str
) -> None:
    a, b = make(redis_client, prefix), make(redis_client, prefix)
    assert a.try_reserve("r", "t", "p", 10, 1000, now=0, ttl_s=60)
    b.add_spend("t", "p", 300)  # the other replica spends after a last looked
    assert b.try_reserve("q", "t", "p", 50, 1000, now=0, ttl_s=60)
    a._check_epoch()
    assert a._seen[("t", "p")] == (300, 60)


def test_a_batch_of_spends_lands_in_one_pipeline(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
    s.add_spend_many([("t", "p", 5, 1), ("t", "p", 7, 2), ("u", "p", 1, None)])
    assert (s.spend("t", "p"), s.spend("u", "p")) == (12, 1)
    assert s.daily_spend("t", "p") == {1: 5, 2: 7}


def test_a_months_totals_expire_after_it_but_all_time_totals_never(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
    s.add_spend("t", "2026-11", 5, day=3)
    s.add_spend("t", "all", 5)
    assert 30 * 86400 < redis_client.ttl(f"{prefix}s:t:2026-11") <= 40 * 86400
    assert redis_client.ttl(f"{prefix}s:t:all") == -1


def test_a_batch_of_releases_is_one_pipeline_with_release_semantics(redis_client: Any, prefix: str) -> None:
    s = make(redis_client, prefix)
    for rid in ("a", "b", "c"):
        assert s.try_reserve(rid, "t", "p", 10, 100, now=0, ttl_s=60)
    assert s.begin_settle("c") is SettleOutcome.OPEN
    assert s.release("b")
    assert s.release_many(["a", "b", "c", "never"]) == [True, False, False, False]
    assert s.reserved("t", now=0) == 10  # only "c", still being committed
