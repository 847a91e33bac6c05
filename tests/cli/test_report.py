"""The HTML report: self-contained, escaped, exact, and rendered by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm.report import RunInfo, collect_report_data, percentile, render_html, write_html

CHROMIUM = next(
    (
        p
        for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
        if p and Path(p).exists()
    ),
    None,
)


def test_report_data_sums_records_exactly(stub_tracker: Any) -> None:
    data = collect_report_data(stub_tracker)
    expected = sum((Decimal(r["total_cost_usd"]) for r in stub_tracker.records), Decimal(0))
    assert data.total_cost_usd == expected
    for dim in ("provider", "tenant_id", "agent_id", "model_id"):
        rows = data.breakdown(dim)
        assert sum((r.cost_usd for r in rows), Decimal(0)) == expected
        assert sum(r.requests for r in rows) == len(stub_tracker.records)


def test_cumulative_series_ends_at_each_tenants_total(stub_tracker: Any) -> None:
    data = collect_report_data(stub_tracker)
    series = data.cumulative_by_tenant()
    assert set(series) == {"acme", "globex", "<script>x</script>"}
    for tenant, points in series.items():
        total = sum(Decimal(r["total_cost_usd"]) for r in stub_tracker.records if r["tenant_id"] == tenant)
        assert points[0][1] == 0.0
        assert points[-1][1] == pytest.approx(float(total))
        assert [p[0] for p in points] == sorted(p[0] for p in points)
    assert data.bucket() == timedelta(seconds=1)


def test_budget_rows_come_from_check_budget(stub_tracker: Any) -> None:
    data = collect_report_data(stub_tracker)
    by_tenant = {b.tenant_id: b for b in data.budgets}
    assert set(by_tenant) == {"acme", "globex"}  # the third tenant has no budget
    assert by_tenant["acme"].limit_usd == pytest.approx(0.05)
    assert by_tenant["acme"].percentage_used > 100
    assert by_tenant["globex"].alert_level is None


def test_tenant_filter_keeps_only_that_tenant(stub_tracker: Any) -> None:
    data = collect_report_data(stub_tracker, tenant_id="globex")
    assert {r.tenant_id for r in data.records} == {"globex"}
    assert [b.tenant_id for b in data.budgets] == ["globex"]


def test_page_is_self_contained_and_escapes_ledger_text(stub_tracker: Any, run_info: RunInfo) -> None:
    page = render_html(collect_report_data(stub_tracker, run=run_info))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    external = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page)
    assert external == []
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    assert page.count("<svg") >= 5  # over time, provider, model, budgets, latency
    for heading in (
        "Cost over time per tenant",
        "Cost by provider",
        "Cost by model",
        "Budget use against limits",
        "Latency by provider",
        "Circuit breaker transitions",
        "Failovers",
    ):
        assert heading in page


def test_page_without_run_info_says_what_is_missing(stub_tracker: Any) -> None:
    page = render_html(collect_report_data(stub_tracker))
    assert "no latency samples" in page
    assert "a ledger alone does not hold them" in page


def test_empty_ledger_renders() -> None:
    class Empty:
        def export_json(self, path: str, **_: Any) -> None:
            Path(path).write_text('{"records": []}')

    page = render_html(collect_report_data(Empty()))
    assert "no data in this range" in page


def test_write_html_replaces_the_file_atomically(tmp_path: Path, stub_tracker: Any) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    write_html(target, collect_report_data(stub_tracker))
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(range(1, 101), 95) == 95
    assert percentile([5.0], 99) == 5.0


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path, stub_tracker: Any, run_info: RunInfo) -> None:
    page = write_html(tmp_path / "report.html", collect_report_data(stub_tracker, run=run_info))
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert dom.count("<svg") >= 5
    assert 'class="series"' in dom  # the per-tenant lines
    assert 'class="budget"' in dom
    assert 'class="threshold"' in dom
    assert "Cost over time per tenant" in dom


def test_records_keep_time_order(stub_tracker: Any) -> None:
    first = stub_tracker.records[0]["timestamp"]
    count = len(stub_tracker.records)
    stub_tracker.records.reverse()
    data = collect_report_data(stub_tracker)
    assert data.records[0].timestamp.isoformat() == first
    assert len(data.records) == count


def test_bucket_labels_read_naturally() -> None:
    from datetime import timedelta

    from greenlang_llm.report.html import _duration

    assert [_duration(timedelta(seconds=s)) for s in (1, 90, 900, 3600, 86400, 7 * 86400)] == [
        "1 s",
        "90 s",
        "15 min",
        "1 h",
        "1 day",
        "7 days",
    ]


def test_nice_ticks_cover_the_maximum_in_round_steps() -> None:
    from greenlang_llm.report.svg import nice_ticks

    assert nice_ticks(0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(1000, 4) == [0.0, 250.0, 500.0, 750.0, 1000.0]
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(float("nan")) == [0.0, 1.0]


def test_budget_chart_marks_thresholds_and_clips_big_overshoots() -> None:
    from greenlang_llm.report.svg import BudgetBar, budget_chart

    chart = budget_chart(
        [BudgetBar("calm", 1.0, 10.0, (0.8, 1.0)), BudgetBar("wild", 50.0, 10.0, (0.8, 1.0))], label="budgets"
    )
    assert chart.count('class="threshold"') == 4
    assert "<path" in chart  # the arrow past 200 %
    assert "500% of $10.00" in chart
    assert "#dc2626" in chart  # over the limit: red


def test_bar_chart_escapes_and_shares() -> None:
    from greenlang_llm.report.svg import bar_chart

    chart = bar_chart([("a&b", 3.0), ("<c>", 1.0)], label="x")
    assert "a&amp;b" in chart
    assert "&lt;c&gt;" in chart
    assert "75%" in chart


def test_many_tenants_list_budgets_once_and_match_the_per_tenant_rows() -> None:
    from datetime import UTC, datetime

    from greenlang_llm import CostTracker, TokenUsage
    from greenlang_llm.report.data import budget_row

    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    tracker = CostTracker(storage=":memory:", clock=lambda: now)
    tenants = [f"t{i:04d}" for i in range(600)]
    for i, tenant in enumerate(tenants):
        if i % 3:  # every third tenant spends without a budget
            tracker.set_budget(tenant, 1 + i % 7, alert_thresholds=[0.5, 0.75 + (i % 5) / 100])
    usage = TokenUsage(10, 5, 15, total_cost_usd=0.75)
    tracker.track_many(
        {"provider": "p", "tenant_id": t, "agent_id": "a", "model_id": "m", "usage": usage}
        for t in tenants[::2]
    )

    class Counting:
        list_calls = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(tracker, name)

        def list_budgets(self) -> Any:
            Counting.list_calls += 1
            return tracker.list_budgets()

    data = collect_report_data(Counting(), budget_tenants=tenants)
    assert Counting.list_calls == 1  # once per report, not once per tenant
    expected = [b for t in sorted(tenants) if (b := budget_row(tracker, t)) is not None]
    assert data.budgets == expected
    assert len(expected) == 400
    assert {r.tenant_id for r in data.records} == set(tenants[::2])
    tracker.close()
