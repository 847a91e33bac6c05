"""`greenlang-llm costs`: every subcommand over a ledger built here, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm import CostTracker, TokenUsage
from greenlang_llm.cli import main

DAY = datetime(2026, 3, 10, tzinfo=UTC)
RECORDS = [  # (hours after DAY, tenant, agent, provider, model, cost)
    (1, "acme", "web", "anthropic", "claude-3-5-sonnet", "0.0123"),
    (2, "acme", "batch", "openai", "gpt-4o-mini", "0.0004"),
    (2, "globex", "web", "openai", "gpt-4o", "0.0250"),
    (26, "acme", "web", "anthropic", "claude-3-5-sonnet", "0.0100"),
    (27, "globex", "batch", "anthropic", "claude-3-haiku", "0.0011"),
]


PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_skip_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            return None
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {exc}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same small ledger in a SQLite file or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield _fill(f"sqlite:///{tmp_path / 'ledger.db'}")
        return
    reason = _pg_skip_reason()
    if reason:
        pytest.skip(reason)
    schema = f"gl_cli_{uuid.uuid4().hex[:12]}"
    try:
        yield _fill(f"{PG_BASE}?schema={schema}")
    finally:
        import psycopg

        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _fill(url: str) -> str:
    tracker = CostTracker(storage=url)
    try:
        tracker.set_budget("acme", monthly_limit_usd=50.0, alert_thresholds=[0.5, 1.0])
        tracker.set_budget("initech", monthly_limit_usd=10.0)
        for hours, tenant, agent, provider, model, cost in RECORDS:
            usage = TokenUsage(
                input_tokens=100,
                output_tokens=50,
                total_tokens=150,
                input_cost_usd=0.0,
                output_cost_usd=float(cost),
                total_cost_usd=float(cost),
            )
            tracker.track_usage(
                provider=provider,
                tenant_id=tenant,
                agent_id=agent,
                model_id=model,
                usage=usage,
                timestamp=DAY + timedelta(hours=hours),
            )
        tracker.track_usage(
            provider="openai",
            tenant_id="acme",
            agent_id="web",
            model_id="gpt-4o",
            usage=TokenUsage(10, 10, 20, 0.0, 0.002, 0.002),
        )  # now: counts in the budget
    finally:
        tracker.close()
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["costs", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_json_totals_and_breakdowns(ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "summary", "--db", ledger, "--from", "2026-03-10", "--to", "2026-03-11", "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["total_requests"] == 5
    assert Decimal(str(data["total_cost_usd"])) == sum(Decimal(r[5]) for r in RECORDS)
    assert Decimal(str(data["breakdown_by_tenant"]["globex"])) == Decimal("0.0261")
    assert set(data["breakdown_by_provider"]) == {"anthropic", "openai"}


def test_summary_table_filters_by_tenant(ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "--db", ledger, "--tenant", "globex", "--to", "2026-03-12")
    assert code == 0
    assert "Cost summary" in out
    assert "globex" in out
    assert "claude-3-5-sonnet" not in out  # acme's model


def test_timeseries_hourly_csv_buckets_sum_to_the_day(
    ledger: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "timeseries",
        "--db",
        ledger,
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-10",
        "--granularity",
        "hourly",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 24
    assert rows[0]["timestamp"].startswith("2026-03-10T00:00")
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("0.0377")


def test_timeseries_daily_json(ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "timeseries",
        "--db",
        ledger,
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-11",
        "--tenant",
        "acme",
        "--format",
        "json",
    )
    assert code == 0
    assert [(p["timestamp"][:10], p["cost_usd"]) for p in json.loads(out)] == [
        ("2026-03-10", pytest.approx(0.0127)),
        ("2026-03-11", pytest.approx(0.0100)),
    ]


def test_export_csv_to_stdout_and_by_tenant(ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "--db", ledger, "--format", "csv", "--to", "2026-03-31")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5
    assert list(rows[0])[:11] == [
        "timestamp",
        "provider",
        "tenant_id",
        "agent_id",
        "model_id",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "input_cost_usd",
        "output_cost_usd",
        "total_cost_usd",
    ]
    code, out, _ = run(
        capsys, "export", "--db", ledger, "--format", "csv", "--tenant", "globex", "--to", "2026-03-31"
    )
    assert {r["tenant_id"] for r in csv.DictReader(io.StringIO(out))} == {"globex"}


def test_export_json_to_a_file(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "export", "--db", ledger, "--format", "json", "--output", str(target))
    assert code == 0
    assert out == ""
    payload = json.loads(target.read_text())
    assert len(payload["records"]) == 6
    assert payload["summary"]["total_requests"] == 6


def test_export_by_tenant_is_filtered_by_the_ledger_with_that_tenants_summary(
    ledger: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenlang_llm.ledger.base import LedgerStorage

    asked: list[str | None] = []
    iter_records = LedgerStorage.iter_records

    def spy(self: LedgerStorage, *args: Any, tenant_id: str | None = None, **kw: Any) -> Any:
        asked.append(tenant_id)
        return iter_records(self, *args, tenant_id=tenant_id, **kw)

    monkeypatch.setattr(LedgerStorage, "iter_records", spy)
    code, out, _ = run(capsys, "export", "--db", ledger, "--format", "json", "--tenant", "globex")
    assert code == 0
    payload = json.loads(out)
    assert [r["tenant_id"] for r in payload["records"]] == ["globex", "globex"]
    assert payload["summary"]["total_requests"] == 2
    assert payload["summary"]["breakdown_by_tenant"] == {"globex": pytest.approx(0.0261)}
    code, out, _ = run(capsys, "export", "--db", ledger, "--format", "csv", "--tenant", "acme")
    assert code == 0
    assert [r["tenant_id"] for r in csv.DictReader(io.StringIO(out))] == ["acme"] * 4
    assert asked == ["globex", "acme"]


def test_budgets_list_every_budget_with_limits(ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "budgets", "--db", ledger, "--format", "json")
    assert code == 0
    rows = {r["tenant_id"]: r for r in json.loads(out)}
    assert set(rows) == {"acme", "initech"}  # globex has spend but no budget
    assert rows["acme"]["limit_usd"] == pytest.approx(50.0)
    assert rows["acme"]["spent_usd"] == pytest.approx(0.002)
    assert rows["acme"]["thresholds"] == [0.5, 1.0]
    code, out, _ = run(capsys, "budgets", "--db", ledger, "--tenant", "initech")
    assert code == 0
    assert "initech" in out


def test_report_writes_the_html_page(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.html"
    code, out, _ = run(capsys, "report", "--db", ledger, "--html", str(target))
    assert code == 0
    assert "6 records" in out
    page = target.read_text()
    assert page.count("<svg") >= 5
    assert "acme" in page


def test_db_defaults_to_the_environment(
    ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENLANG_LLM_DB", ledger)
    code, out, _ = run(capsys, "summary", "--format", "json")
    assert code == 0
    assert json.loads(out)["total_requests"] == 6


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["budgets", "--tenant", "nobody"], "unknown tenant 'nobody'"),
        (["summary", "--tenant", "nobody"], "unknown tenant 'nobody'"),
        (["budgets", "--tenant", "globex"], "no budget set"),
        (["summary", "--from", "2026-03-12", "--to", "2026-03-10"], "is after --to"),
        (["timeseries", "--granularity", "weekly"], "unknown granularity 'weekly'"),
        (["summary", "--from", "last tuesday"], "cannot parse date 'last tuesday'"),
        (["summary", "--format", "xml"], "unknown format 'xml'"),
        (["explode"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    ledger: str, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv, "--db", ledger)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_ledger_file_is_a_usage_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    code, _, err = run(capsys, "summary", "--db", str(missing))
    assert code == 2
    assert "no ledger at" in err
    assert not missing.exists()


def test_invalid_log_level_does_not_crash(
    ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    code, _, err = run(capsys, "summary", "--db", ledger)
    assert code == 0
    assert "ignoring unknown LOG_LEVEL" in err


@pytest.mark.parametrize("action", ["summary", "export"])
def test_unwritable_output_file_is_a_usage_error(
    ledger: str, tmp_path: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, action, "--db", ledger, "-o", str(tmp_path / "missing-dir" / "out.txt"))
    assert code == 2
    assert err.startswith("error: cannot write")
    assert len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_a_ledger_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    code, _, err = run(capsys, "summary", "--db", str(junk))
    assert code == 2
    assert "cannot open ledger" in err
    assert len(err.strip().splitlines()) == 1
