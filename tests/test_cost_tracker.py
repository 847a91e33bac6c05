"""CostTracker on every ledger backend: tracking, budgets, alerts, reservations, reports."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenlang_llm import BudgetExceededError, CostTracker, InvalidRequestError, TokenUsage

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_skip_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            return None
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}"


_BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite-memory":
        yield "sqlite:///:memory:"
    elif request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        reason = _pg_skip_reason()
        if reason:
            pytest.skip(reason)
        schema = f"gl_test_{uuid.uuid4().hex[:12]}"
        yield f"{PG_BASE}?schema={schema}"
        import psycopg

        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 1, 20, 12, 0, tzinfo=UTC))


@pytest.fixture
def tracker(url: str, clock: Clock) -> Iterator[CostTracker]:
    t = CostTracker(storage=url, clock=clock)
    yield t
    t.close()


def usage(cost: float = 0.0105, inp: int = 1000, out: int = 500) -> TokenUsage:
    return TokenUsage(inp, out, inp + out, cost / 3, cost - cost / 3, cost)


def reopen(url: str, clock: Clock, **kw: Any) -> CostTracker:
    if ":memory:" in url:
        pytest.skip("an in-memory ledger does not survive a restart")
    return CostTracker(storage=url, clock=clock, **kw)


# -- tracking --------------------------------------------------------------------------------------


def test_track_usage_is_summarised_by_every_dimension(tracker: CostTracker) -> None:
    tracker.track_usage("anthropic", "acme", "esg", "claude", usage(0.5))
    tracker.track_usage("openai", "acme", "esg", "gpt", usage(0.25))
    tracker.track_usage("openai", "beta", "chat", "gpt", usage(0.125))
    s = tracker.get_summary()
    assert (s.total_cost_usd, s.total_requests, s.total_tokens) == (0.875, 3, 4500)
    assert s.breakdown_by_provider == {"anthropic": 0.5, "openai": 0.375}
    assert s.breakdown_by_agent == {"chat": 0.125, "esg": 0.75}
    assert s.breakdown_by_model == {"claude": 0.5, "gpt": 0.375}
    assert s.breakdown_by_tenant == {"acme": 0.75, "beta": 0.125}
    assert tracker.get_summary(tenant_id="beta").total_cost_usd == 0.125


def _bad_usages() -> list[Any]:
    neg = usage()
    neg.input_tokens = -1
    nan = usage()
    nan.total_cost_usd = math.nan
    negative_cost = usage()
    negative_cost.output_cost_usd = -0.5
    wrong = usage()
    wrong.output_tokens = 2.5  # type: ignore[assignment]
    return [neg, nan, negative_cost, wrong, {"input_tokens": 1}, None]


@pytest.mark.parametrize("bad_usage", _bad_usages())
def test_bad_usage_is_rejected_with_a_value_error_and_nothing_written(
    tracker: CostTracker, bad_usage: Any
) -> None:
    with pytest.raises(ValueError, match="usage"):
        tracker.track_usage("p", "t", "a", "m", bad_usage)
    assert tracker.ledger.count_records() == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "t", "a", "m"), "provider must not be empty"),
        (("p", "", "a", "m"), "tenant_id must not be empty"),
        (("p", "  ", "a", "m"), "tenant_id must not be empty"),
        (("p", 7, "a", "m"), "tenant_id must be a string"),
        (("p", "t", None, "m"), "agent_id must be a string"),
    ],
)
def test_bad_names_are_rejected_and_nothing_written(
    tracker: CostTracker, args: tuple[Any, ...], match: str
) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        tracker.track_usage(*args, usage())
    with pytest.raises(InvalidRequestError, match="timestamp"):
        tracker.track_usage("p", "t", "a", "m", usage(), timestamp="yesterday")  # type: ignore[arg-type]
    assert tracker.ledger.count_records() == 0


def test_duplicate_request_id_is_recorded_once(tracker: CostTracker) -> None:
    tracker.set_budget("t", 10.0)
    assert tracker.track_usage("p", "t", "a", "m", usage(1.0), request_id="req-1") is True
    assert tracker.track_usage("p", "t", "a", "m", usage(1.0), request_id="req-1") is False
    assert tracker.ledger.count_records() == 1
    assert tracker.check_budget("t").spent_usd == 1.0


def test_track_many_validates_everything_first(tracker: CostTracker) -> None:
    good = {"provider": "p", "tenant_id": "t", "agent_id": "a", "model_id": "m", "usage": usage(0.1)}
    with pytest.raises(InvalidRequestError, match=r"records\[2\]: tenant_id"):
        tracker.track_many([good, good, {**good, "tenant_id": ""}])
    assert tracker.ledger.count_records() == 0
    assert tracker.track_many([good] * 5 + [{**good, "request_id": "x"}, {**good, "request_id": "x"}]) == 6
    assert tracker.get_summary().total_requests == 6


def test_month_to_date_is_rebuilt_from_the_ledger_on_restart(url: str, clock: Clock) -> None:
    first = CostTracker(storage=url, clock=clock)
    first.set_budget("t", 10.0, hard_limit=True)
    first.track_usage("p", "t", "a", "m", usage(2.5))
    first.track_usage("p", "t", "a", "m", usage(1.0), timestamp=datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    if ":memory:" in url:
        first.close()
        pytest.skip("an in-memory ledger does not survive a restart")
    first.close()
    second = reopen(url, clock)
    status = second.check_budget("t")  # budget and spend survived; December's record is not this month
    assert (status.spent_usd, status.limit_usd, status.hard_limit) == (2.5, 10.0, True)
    second.close()


# -- budgets and alerts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "thresholds", "match"),
    [
        (0, [0.5], "greater than 0"),
        (-1, [0.5], "negative"),
        (math.nan, [0.5], "finite"),
        (10, [0.9, 0.8], "sorted"),
        (10, [0.8, 0.8], "sorted"),
        (10, [0.0], r"\(0, 2\]"),
        (10, [2.5], r"\(0, 2\]"),
        (10, [True], r"\(0, 2\]"),
        (10, "0.8", "list"),
    ],
)
def test_set_budget_validates(tracker: CostTracker, limit: float, thresholds: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tracker.set_budget("t", limit, thresholds)


def test_check_budget_of_unknown_tenant_is_a_key_error(tracker: CostTracker) -> None:
    with pytest.raises(KeyError, match="no budget set for tenant 'ghost'"):
        tracker.check_budget("ghost")


def test_one_usage_past_several_thresholds_fires_each_once_in_ascending_order(tracker: CostTracker) -> None:
    fired: list[tuple[str, float, float]] = []
    tracker.register_alert_callback(lambda t, th, cost: fired.append((t, th, cost)))
    tracker.set_budget("acme", 100.0, [0.5, 0.8, 0.9, 1.0])
    tracker.track_usage("p", "acme", "a", "m", usage(60.0))
    tracker.track_usage("p", "acme", "a", "m", usage(35.0))
    tracker.track_usage("p", "acme", "a", "m", usage(1.0))
    assert fired == [("acme", 0.5, 60.0), ("acme", 0.8, 95.0), ("acme", 0.9, 95.0)]
    tracker.track_usage("p", "acme", "a", "m", usage(10.0))
    assert fired[3:] == [("acme", 1.0, 106.0)]
    status = tracker.check_budget("acme")
    assert (status.remaining_usd, round(status.percentage_used, 6)) == (0.0, 106.0)
    assert (status.alert_triggered, status.alert_level) == (True, 1.0)


def test_alerts_fire_again_after_the_monthly_reset(tracker: CostTracker, clock: Clock) -> None:
    fired: list[tuple[str, float]] = []
    tracker.register_alert_callback(lambda t, th, cost: fired.append((clock.now.strftime("%m"), th)))
    tracker.set_budget("acme", 10.0, [0.5, 1.0])
    tracker.track_usage("p", "acme", "a", "m", usage(6.0))
    assert tracker.check_budget("acme").spent_usd == 6.0
    clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    status = tracker.check_budget("acme")
    assert (status.spent_usd, status.alert_triggered, status.alert_level) == (0.0, False, None)
    assert status.period_start == datetime(2026, 2, 1, tzinfo=UTC)
    tracker.track_usage("p", "acme", "a", "m", usage(11.0))
    assert fired == [("01", 0.5), ("02", 0.5), ("02", 1.0)]


def test_without_auto_reset_spend_accumulates_across_months(url: str, clock: Clock) -> None:
    tracker = CostTracker(auto_reset_budgets=False, storage=url, clock=clock)
    fired: list[float] = []
    tracker.register_alert_callback(lambda t, th, cost: fired.append(th))
    tracker.set_budget("acme", 10.0, [0.5])
    tracker.track_usage("p", "acme", "a", "m", usage(6.0))
    clock.now = datetime(2026, 2, 3, tzinfo=UTC)
    tracker.track_usage("p", "acme", "a", "m", usage(1.0))
    assert tracker.check_budget("acme").spent_usd == 7.0
    assert fired == [0.5]
    tracker.close()


def test_a_restart_does_not_fire_an_alert_again(url: str, clock: Clock) -> None:
    fired: list[float] = []
    first = CostTracker(storage=url, clock=clock)
    first.register_alert_callback(lambda t, th, cost: fired.append(th))
    first.set_budget("acme", 10.0, [0.5, 1.0])
    first.track_usage("p", "acme", "a", "m", usage(6.0))
    if ":memory:" in url:
        first.close()
        pytest.skip("an in-memory ledger does not survive a restart")
    first.close()
    second = reopen(url, clock)
    second.register_alert_callback(lambda t, th, cost: fired.append(th))
    second.track_usage("p", "acme", "a", "m", usage(1.0))
    second.track_usage("p", "acme", "a", "m", usage(5.0))
    assert fired == [0.5, 1.0]
    second.close()


def test_a_failing_callback_is_logged_and_tracking_goes_on(
    tracker: CostTracker, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[float] = []

    def broken(t: str, th: float, cost: float) -> None:
        raise RuntimeError("pager down")

    tracker.register_alert_callback(broken)
    tracker.register_alert_callback(lambda t, th, cost: seen.append(th))
    tracker.set_budget("acme", 1.0, [0.5])
    with caplog.at_level(logging.ERROR, logger="greenlang_llm.cost_tracker"):
        assert tracker.track_usage("p", "acme", "a", "m", usage(0.6)) is True
    assert seen == [0.5]
    assert "pager down" in caplog.text
    assert tracker.ledger.count_records() == 1


def test_a_callback_may_call_back_into_the_tracker(tracker: CostTracker) -> None:
    seen: list[float] = []
    tracker.register_alert_callback(lambda t, th, cost: seen.append(tracker.check_budget(t).spent_usd))
    tracker.set_budget("acme", 1.0, [0.5])
    tracker.track_usage("p", "acme", "a", "m", usage(0.75))
    assert seen == [0.75]


def test_projection_follows_the_run_rate(tracker: CostTracker, clock: Clock) -> None:
    tracker.set_budget("acme", 1000.0)
    for day in range(1, 11):
        tracker.track_usage(
            "p", "acme", "a", "m", usage(3.0), timestamp=datetime(2026, 1, day, 6, tzinfo=UTC)
        )
    clock.now = datetime(2026, 1, 11, tzinfo=UTC)
    assert tracker.check_budget("acme").projected_monthly_cost == pytest.approx(93.0, abs=0.01)


# -- hard budgets ------------------------------------------------------------------------------------


def test_reserve_commit_release(tracker: CostTracker) -> None:
    tracker.set_budget("acme", 1.0, hard_limit=True)
    r1 = tracker.reserve("acme", 0.6, provider="anthropic", model_id="claude", agent_id="bot")
    assert (r1.tenant_id, r1.amount_usd, r1.enforced, r1.dims["provider"]) == ("acme", 0.6, True, "anthropic")
    assert tracker.check_budget("acme").reserved_usd == 0.6
    with pytest.raises(BudgetExceededError, match=r"tenant 'acme'.*limit \$1\.00") as info:
        tracker.reserve("acme", 0.5)
    assert (info.value.tenant_id, info.value.limit_usd, info.value.status_code) == ("acme", 1.0, 429)
    assert tracker.commit(r1, usage(0.4), request_id="req-1") is True
    status = tracker.check_budget("acme")
    assert (status.spent_usd, status.reserved_usd) == (0.4, 0.0)
    assert tracker.get_summary().breakdown_by_model == {"claude": 0.4}
    r2 = tracker.reserve("acme", 0.5)
    assert tracker.release(r2) is True
    assert tracker.release(r2) is False  # a second release is a no-op
    with pytest.raises(InvalidRequestError, match="already committed or released"):
        tracker.commit(r2, usage(0.1), provider="p")
    with pytest.raises(InvalidRequestError, match="already committed or released"):
        tracker.commit(r1, usage(0.1))
    assert tracker.ledger.count_records() == 1


def test_tenants_without_a_hard_budget_get_no_op_reservations(tracker: CostTracker) -> None:
    tracker.set_budget("soft", 1.0)
    for tenant in ("soft", "no-budget"):
        r = tracker.reserve(tenant, 50.0, provider="p")
        assert r.enforced is False
        assert tracker.commit(r, usage(2.0)) is True
    assert tracker.check_budget("soft").spent_usd == 2.0


def test_commit_validates_before_freeing(tracker: CostTracker) -> None:
    tracker.set_budget("acme", 1.0, hard_limit=True)
    r = tracker.reserve("acme", 0.5)
    with pytest.raises(InvalidRequestError, match="provider"):
        tracker.commit(r, usage(0.1), provider="")
    with pytest.raises(InvalidRequestError, match="unknown argument"):
        tracker.commit(r, usage(0.1), provider="p", colour="red")
    assert tracker.check_budget("acme").reserved_usd == 0.5  # still held
    assert tracker.commit(r, usage(0.1), provider="p") is True


def test_commit_as_design_writes_it_records_an_unnamed_provider_as_unknown(tracker: CostTracker) -> None:
    tracker.set_budget("acme", 1.0, hard_limit=True)
    r = tracker.reserve("acme", 0.5)
    assert tracker.commit(r, usage(0.1)) is True  # commit(reservation, usage), no dims at all
    assert tracker.check_budget("acme").reserved_usd == 0.0
    assert tracker.get_summary(tenant_id="acme").breakdown_by_provider == {"unknown": 0.1}


def test_leaked_reservations_expire_after_the_ttl(url: str, clock: Clock) -> None:
    tracker = CostTracker(storage=url, clock=clock, reservation_ttl_s=60)
    tracker.set_budget("acme", 1.0, hard_limit=True)
    leaked = tracker.reserve("acme", 0.9)
    with pytest.raises(BudgetExceededError):
        tracker.reserve("acme", 0.2)
    clock.now += timedelta(seconds=61)
    assert tracker.check_budget("acme").reserved_usd == 0.0
    tracker.reserve("acme", 0.2)
    assert tracker.commit(leaked, usage(0.3), provider="p") is True  # the money was spent: still recorded
    assert tracker.check_budget("acme").spent_usd == 0.3
    tracker.close()


def _spend_concurrently(tracker: CostTracker, n: int, worker: Any) -> None:
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def test_200_concurrent_threads_never_overshoot_a_hard_budget(tracker: CostTracker) -> None:
    tracker.set_budget("acme", 1.0, hard_limit=True)
    refused: list[int] = []

    def worker(i: int) -> None:
        try:
            r = tracker.reserve("acme", 0.013, provider="p", model_id="m")
        except BudgetExceededError:
            refused.append(i)
            return
        if i % 5 == 0:
            tracker.release(r)
        else:
            tracker.commit(r, usage(0.013 - (i % 3) * 0.001))

    _spend_concurrently(tracker, 200, worker)
    spent = Decimal(str(tracker.get_summary(tenant_id="acme").total_cost_usd))
    assert spent <= Decimal("1.0")
    assert refused  # the limit did bind
    assert tracker.check_budget("acme").reserved_usd == 0.0


async def test_200_concurrent_asyncio_tasks_never_overshoot_a_hard_budget(tracker: CostTracker) -> None:
    tracker.set_budget("acme", 0.5, hard_limit=True)

    def one(i: int) -> bool:
        try:
            r = tracker.reserve("acme", 0.01, provider="p")
        except BudgetExceededError:
            return False
        tracker.commit(r, usage(0.01), request_id=f"req-{i}")
        return True

    results = await asyncio.gather(*(asyncio.to_thread(one, i) for i in range(200)))
    assert sum(results) == 50
    assert tracker.get_summary().total_cost_usd == pytest.approx(0.5, abs=1e-12)
    assert Decimal(str(tracker.get_summary().total_cost_usd)) <= Decimal("0.5")


# -- reports -----------------------------------------------------------------------------------------

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def _seed(tracker: CostTracker) -> None:
    for hours, cost, tenant in [(0, 1.0, "a"), (1.5, 2.0, "a"), (25, 4.0, "b"), (24 * 40, 8.0, "a")]:
        tracker.track_usage("p", tenant, "x", "m", usage(cost), timestamp=JAN + timedelta(hours=hours))


def test_summary_dates_are_inclusive_utc_and_naive_means_utc(tracker: CostTracker) -> None:
    _seed(tracker)
    assert tracker.get_summary(JAN, JAN + timedelta(hours=1, minutes=30)).total_cost_usd == 3.0
    assert tracker.get_summary(JAN, JAN + timedelta(hours=1, minutes=29)).total_cost_usd == 1.0
    assert tracker.get_summary(datetime(2026, 1, 1, 1), None).total_cost_usd == 14.0  # naive = UTC
    assert tracker.get_summary(date(2026, 1, 1), date(2026, 1, 1)).total_cost_usd == 3.0  # whole day
    assert tracker.get_summary(date(2026, 1, 2), date(2026, 1, 2), tenant_id="b").total_requests == 1
    assert tracker.get_summary(date(2027, 1, 1)).total_requests == 0


def test_time_series_has_every_bucket_in_order(tracker: CostTracker) -> None:
    _seed(tracker)
    daily = tracker.get_time_series(date(2026, 1, 1), date(2026, 1, 4))
    assert daily == [(JAN + timedelta(days=d), v) for d, v in enumerate([3.0, 4.0, 0.0, 0.0])]
    hourly = tracker.get_time_series(JAN, JAN + timedelta(hours=2), "hourly", tenant_id="a")
    assert hourly == [(JAN, 1.0), (JAN + timedelta(hours=1), 2.0), (JAN + timedelta(hours=2), 0.0)]
    monthly = tracker.get_time_series(date(2025, 12, 15), date(2026, 3, 1), "monthly")
    assert [(ts.month, v) for ts, v in monthly] == [(12, 0.0), (1, 7.0), (2, 8.0), (3, 0.0)]
    with pytest.raises(ValueError, match="granularity"):
        tracker.get_time_series(JAN, JAN, "weekly")


def test_csv_round_trip_is_exact(tracker: CostTracker, tmp_path: Path) -> None:
    _seed(tracker)
    tracker.track_usage("p", "a", "x", "m", TokenUsage(3, 4, 7, 0.1, 0.2, 0.3), timestamp=JAN, request_id="r")
    path = tmp_path / "costs.csv"
    assert tracker.export_csv(path, JAN, date(2026, 1, 2)) == 4
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0])[:11] == [
        "timestamp", "provider", "tenant_id", "agent_id", "model_id", "input_tokens", "output_tokens",
        "total_tokens", "input_cost_usd", "output_cost_usd", "total_cost_usd",
    ]  # fmt: skip
    assert sum(Decimal(r["total_cost_usd"]) for r in rows) == Decimal("7.3")
    assert {r["total_cost_usd"] for r in rows if r["request_id"] == "r"} == {"0.3"}
    assert datetime.fromisoformat(rows[0]["timestamp"]) == JAN
    assert not list(tmp_path.glob(".tmp-*"))


def test_json_export_with_summary_and_for_an_empty_range(tracker: CostTracker, tmp_path: Path) -> None:
    _seed(tracker)
    path = tmp_path / "costs.json"
    assert tracker.export_json(path, include_summary=True) == 4
    data = json.loads(path.read_text())
    assert len(data["records"]) == 4
    assert data["summary"]["total_cost_usd"] == 15.0
    assert data["summary"]["breakdown_by_tenant"] == {"a": 11.0, "b": 4.0}
    assert sum(Decimal(str(r["total_cost_usd"])) for r in data["records"]) == Decimal(15)
    tracker.export_json(path, date(2030, 1, 1), date(2030, 1, 2))
    assert json.loads(path.read_text()) == {"records": []}
    tracker.export_json(path, date(2030, 1, 1), include_summary=True)
    assert json.loads(path.read_text())["summary"]["total_requests"] == 0


# -- exactness and durability ---------------------------------------------------------------------


def _nanos(usd: float) -> int:
    return int((Decimal(str(usd)) * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


_money = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(st.tuples(_money, st.sampled_from(["a", "b", "c"]), st.integers(0, 10**6)), max_size=40)
)
def test_totals_are_the_exact_sum_of_arbitrary_usages(
    items: list[tuple[float, str, int]], tmp_path: Path
) -> None:
    with CostTracker(storage="sqlite:///:memory:") as tracker:
        for cost, tenant, tokens in items:
            tracker.track_usage("p", tenant, "x", "m", TokenUsage(tokens, 0, tokens, cost, 0.0, cost))
        nanos = sum(_nanos(c) for c, _, _ in items)  # each usage is exact to the nano-dollar
        assert sum(r[6] for r in tracker.ledger.summary_rows(-(2**62), 2**62, None)) == nanos
        summary = tracker.get_summary()
        assert summary.total_cost_usd == nanos / 10**9
        assert summary.total_tokens == sum(t for _, _, t in items)
        for tenant in "abc":
            want = sum(_nanos(c) for c, t, _ in items if t == tenant)
            assert summary.breakdown_by_tenant.get(tenant, 0.0) == want / 10**9
        path = tmp_path / f"h{uuid.uuid4().hex}.csv"
        tracker.export_csv(path)
        exported = sum((Decimal(r["total_cost_usd"]) for r in csv.DictReader(path.open())), Decimal(0))
        assert exported == Decimal(nanos) / 10**9


_WRITER = """
import sys, threading
from greenlang_llm import CostTracker, TokenUsage
tracker = CostTracker(storage=sys.argv[1])
lock = threading.Lock()
def run(w):
    i = 0
    while True:
        rid = f"w{w}-{i}"
        tracker.track_usage("p", "t", "a", "m", TokenUsage(1, 1, 2, 0.001, 0.001, 0.002), request_id=rid)
        with lock:
            sys.stdout.write(rid + "\\n"); sys.stdout.flush()
        i += 1
for w in range(4):
    threading.Thread(target=run, args=(w,), daemon=True).start()
threading.Event().wait()
"""


def test_every_acknowledged_record_survives_kill_9(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path}/ledger.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, db], stdout=subprocess.PIPE, text=True)
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line.strip())
            if len(acked) >= 2000:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert len(acked) >= 2000
    with CostTracker(storage=db) as tracker:
        stored = {row[0] for row in tracker.ledger._read("SELECT request_id FROM usage_records")}  # type: ignore[attr-defined]
    assert set(acked) <= stored


# -- more edges --------------------------------------------------------------------------------------


def test_a_bad_ledger_url_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'mysql://db'"):
        CostTracker(storage="mysql://db")


def test_an_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(ConnectionError, match="cannot connect to the PostgreSQL ledger") as info:
        CostTracker(storage="postgresql://u:secret@127.0.0.1:1/x")
    assert "postgresql://u@127.0.0.1:1/x" in str(info.value)
    assert "secret" not in str(info.value)


def test_alerts_from_racing_threads_arrive_once_each_in_ascending_order(tracker: CostTracker) -> None:
    thresholds = [round(0.1 * i, 1) for i in range(1, 11)]
    fired: list[float] = []
    tracker.register_alert_callback(lambda t, th, cost: fired.append(th))
    tracker.set_budget("acme", 10.0, thresholds)
    _spend_concurrently(tracker, 40, lambda i: tracker.track_usage("p", "acme", "a", "m", usage(0.25)))
    assert fired == thresholds


def test_time_series_without_dates_spans_the_data(tracker: CostTracker) -> None:
    assert tracker.get_time_series(None, None) == []
    _seed(tracker)
    series = tracker.get_time_series(None, None, "monthly")
    assert series == [(JAN, 7.0), (datetime(2026, 2, 1, tzinfo=UTC), 8.0)]


def test_track_many_rejects_non_mappings_and_unknown_fields(tracker: CostTracker) -> None:
    with pytest.raises(InvalidRequestError, match=r"records\[0\] must be a mapping"):
        tracker.track_many([("p", "t")])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="unknown field"):
        tracker.track_many([{"provider": "p", "tenant_id": "t", "usage": usage(), "colour": 1}])
    assert tracker.ledger.count_records() == 0


def test_exports_for_one_tenant_hold_its_records_and_its_summary(
    tracker: CostTracker, tmp_path: Path
) -> None:
    _seed(tracker)
    path = tmp_path / "b.csv"
    assert tracker.export_csv(path, tenant_id="b") == 1
    assert [r["tenant_id"] for r in csv.DictReader(path.open())] == ["b"]
    assert tracker.export_csv(path, JAN, date(2026, 1, 1), tenant_id="a") == 2
    json_path = tmp_path / "a.json"
    assert tracker.export_json(json_path, include_summary=True, tenant_id="a") == 3
    data = json.loads(json_path.read_text())
    assert {r["tenant_id"] for r in data["records"]} == {"a"}
    assert data["summary"]["total_cost_usd"] == 11.0
    assert data["summary"]["breakdown_by_tenant"] == {"a": 11.0}
    assert tracker.export_json(json_path, tenant_id="nobody") == 0
    assert json.loads(json_path.read_text()) == {"records": []}
    with pytest.raises(InvalidRequestError, match="tenant_id"):
        tracker.export_csv(path, tenant_id="")
    with pytest.raises(InvalidRequestError, match="tenant_id"):
        tracker.export_json(path, tenant_id=7)  # type: ignore[arg-type]
