"""LedgerReports on its own: reports over a ledger with no budget state (every backend)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from greenlang_llm import InvalidRequestError
from greenlang_llm.ledger import open_ledger
from greenlang_llm.ledger.records import UsageRecord
from greenlang_llm.ledger.reports import LedgerReports

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000


def rec(offset_us: int, cost: int, tenant: str) -> UsageRecord:
    return UsageRecord(T0 + offset_us, "p", tenant, "a", "m", 1, 2, 3, 0, 0, cost, 0, cost, False, None)


def test_reports_sum_nanos_and_return_floats_and_exact_strings(ledger_url: str, tmp_path: Path) -> None:
    ledger = open_ledger(ledger_url)
    ledger.insert_many(
        [rec(0, 100_000_000, "a"), rec(HOUR, 200_000_000, "a"), rec(25 * HOUR, 10_500_000, "b")]
    )
    reports = LedgerReports(ledger)

    summary = reports.summary()
    assert (summary.total_cost_usd, summary.total_requests) == (0.3105, 3)
    assert summary.breakdown_by_tenant == {"a": 0.3, "b": 0.0105}
    assert reports.summary(tenant_id="b").total_cost_usd == 0.0105

    jan1, jan2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert reports.time_series(jan1, date(2026, 1, 2)) == [(jan1, 0.3), (jan2, 0.0105)]
    assert reports.time_series(None, None, "hourly", tenant_id="a") == [
        (jan1, 0.1),
        (jan1.replace(hour=1), 0.2),
    ]

    assert reports.export_csv(tmp_path / "b.csv", tenant_id="b") == 1
    assert "0.0105" in (tmp_path / "b.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    assert reports.export_json(tmp_path / "a.json", include_summary=True, tenant_id="a") == 2
    data = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert [r["total_cost_usd"] for r in data["records"]] == [0.1, 0.2]
    assert data["summary"]["total_cost_usd"] == 0.3
    ledger.close()


def test_exports_refuse_an_empty_tenant(tmp_path: Path) -> None:
    ledger = open_ledger("sqlite:///:memory:")
    with pytest.raises(InvalidRequestError, match="tenant_id must be a non-empty string"):
        LedgerReports(ledger).export_csv(tmp_path / "x.csv", tenant_id=" ")
    ledger.close()
