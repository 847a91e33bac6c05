"""`greenlang-llm demo`: runs end to end on the embedded simulator, writes files that agree exactly."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from greenlang_llm.cli import main
from greenlang_llm.cli._demo_workload import TENANTS, arrival_span, fault_schedule, plan_workload

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small quiet demo run shared by the file checks (it takes a few seconds)."""
    out = tmp_path_factory.mktemp("demo")
    assert (
        main(["demo", "--requests", "40", "--quiet", "--seed", "3", "--out", str(out), "--time-scale", "0.5"])
        == 0
    )
    return out


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "costs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_demo_writes_csv_json_report_and_ledger(demo_out: Path) -> None:
    for name in ("costs.csv", "costs.json", "report.html", "ledger.db"):
        assert (demo_out / name).stat().st_size > 0, name
    payload = json.loads((demo_out / "costs.json").read_text())
    assert set(payload) == {"records", "summary"}
    rows = _csv_rows(demo_out)
    assert len(rows) == len(payload["records"]) == payload["summary"]["total_requests"]
    assert 0 < len(rows) <= 42  # 40 requests, and the agent turn's two calls
    assert {r["tenant_id"] for r in rows} <= set(TENANTS)
    assert {r["provider"] for r in rows} <= {"anthropic", "openai"}


def test_demo_csv_sums_exactly_to_the_json_summary(demo_out: Path) -> None:
    rows = _csv_rows(demo_out)
    summary = json.loads((demo_out / "costs.json").read_text())["summary"]
    total = sum((Decimal(r["total_cost_usd"]) for r in rows), Decimal(0))
    assert total > 0
    assert Decimal(str(summary["total_cost_usd"])) == total
    for column, key in (
        ("tenant_id", "tenant"),
        ("provider", "provider"),
        ("agent_id", "agent"),
        ("model_id", "model"),
    ):
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            sums[r[column]] += Decimal(r["total_cost_usd"])
        assert {k: Decimal(str(v)) for k, v in summary[f"breakdown_by_{key}"].items()} == sums
    for r in rows:
        assert Decimal(r["input_cost_usd"]) + Decimal(r["output_cost_usd"]) == Decimal(r["total_cost_usd"])
    assert sum(int(r["total_tokens"]) for r in rows) == summary["total_tokens"]


def test_demo_report_is_self_contained_with_charts(demo_out: Path) -> None:
    page = (demo_out / "report.html").read_text()
    assert page.count("<svg") >= 5
    assert "<script" not in page
    assert "Circuit breaker transitions" in page
    assert "embedded simulator" in page


def test_demo_plain_output_shows_faults_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--requests", "30", "--out", str(tmp_path), "--time-scale", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "outage: every call answers 529 overloaded" in out
    assert "progress 30/30" in out
    assert "Cost by tenant" in out
    assert "Files written" in out
    assert "\x1b[" not in out  # no terminal control codes when stdout is not a TTY


def test_workload_is_deterministic_for_a_seed() -> None:
    assert plan_workload(50, 7) == plan_workload(50, 7)
    assert plan_workload(50, 7) != plan_workload(50, 8)
    plan = plan_workload(300, 7)
    assert [r.index for r in plan] == list(range(300))
    assert plan[-1].arrival_s <= arrival_span(300)
    assert {r.tenant for r in plan} == set(TENANTS)
    assert any(r.stream for r in plan)
    assert any(not r.stream for r in plan)
    assert len({r.max_tokens for r in plan}) > 20  # mixed sizes


def test_fault_schedule_turns_each_fault_on_then_off() -> None:
    steps = fault_schedule(300)
    assert [(s.fault, s.on) for s in steps] == [
        ("outage", True),
        ("outage", False),
        ("rate_limit", True),
        ("rate_limit", False),
    ]
    assert [s.at_index for s in steps] == sorted(s.at_index for s in steps)
    assert all(0 <= s.at_index < 300 for s in fault_schedule(1))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--strategy", "cheapest"], "unknown strategy"),
        (["--requests", "0"], "--requests must be between"),
        (["--live"], "--live needs"),
    ],
)
def test_bad_demo_arguments_exit_2_with_one_line(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unwritable_out_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["demo", "--quiet", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to --out")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_read_only_out_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path.chmod(0o500)
    try:
        assert main(["demo", "--quiet", "--out", str(tmp_path / "out")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "cannot write to --out" in capsys.readouterr().err


def test_same_seed_sends_the_same_requests(demo_out: Path, tmp_path: Path) -> None:
    """Which provider answers may vary with timing; who asked for what, and how much, may not."""
    assert (
        main(
            [
                "demo",
                "--requests",
                "40",
                "--quiet",
                "--seed",
                "3",
                "--out",
                str(tmp_path),
                "--time-scale",
                "0.5",
            ]
        )
        == 0
    )

    def asked(out: Path) -> set[tuple[str, ...]]:
        return {
            (r["request_id"], r["tenant_id"], r["agent_id"], r["input_tokens"], r["output_tokens"])
            for r in _csv_rows(out)
        }

    assert asked(tmp_path) == asked(demo_out)
