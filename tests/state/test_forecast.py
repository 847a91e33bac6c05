from __future__ import annotations

from datetime import UTC, datetime

from greenlang_llm.state import project_month_nanos


def test_constant_daily_spend_projects_the_linear_run_rate() -> None:
    now = datetime(2026, 4, 11, 0, 0, tzinfo=UTC)  # 10 full days of April (30 days) elapsed
    daily = dict.fromkeys(range(1, 11), 100)
    assert abs(project_month_nanos(daily, now) - 3000) <= 20  # today's empty first hour weighs a little


def test_a_ramp_is_projected_from_the_recent_level_not_the_month_average() -> None:
    now = datetime(2026, 4, 21, 12, 0, tzinfo=UTC)
    daily = {d: (0 if d <= 14 else 1000) for d in range(1, 21)} | {21: 500}
    spent = sum(daily.values())
    linear = spent / (20.5 / 30)
    projected = project_month_nanos(daily, now)
    assert projected > linear
    assert projected > spent + 8 * 800  # close to 1000/day for the 9.5 days left


def test_no_spend_projects_zero_and_the_first_minutes_do_not_explode() -> None:
    assert project_month_nanos({}, datetime(2026, 4, 1, 0, 1, tzinfo=UTC)) == 0
    early = project_month_nanos({1: 10}, datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
    assert early <= 10 + 10 * 24 * 30
