"""Fixtures for the CLI and report tests: a stub tracker speaking the CostTracker read API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm.report import AlertEvent, BreakerEvent, FailoverEvent, RunInfo

T0 = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)


@dataclass
class StubStatus:
    percentage_used: float
    remaining_usd: float
    projected_monthly_cost: float
    alert_triggered: bool
    alert_level: float | None


class StubTracker:
    """Answers ``export_json`` and ``check_budget`` like CostTracker, from a fixed record list."""

    def __init__(self, records: list[dict[str, Any]], limits: dict[str, float]) -> None:
        self.records = records
        self.limits = limits

    def export_json(
        self, path: str, start_date: Any = None, end_date: Any = None, include_summary: bool = False
    ) -> None:
        Path(path).write_text(json.dumps({"records": self.records}))

    def get_summary(self, start_date: Any = None, end_date: Any = None, tenant_id: str | None = None) -> Any:
        total = sum(Decimal(r["total_cost_usd"]) for r in self.records if tenant_id in (None, r["tenant_id"]))
        return type("Summary", (), {"total_cost_usd": float(total)})()

    def check_budget(self, tenant_id: str) -> StubStatus:
        limit = self.limits[tenant_id]
        spent = sum(float(r["total_cost_usd"]) for r in self.records if r["tenant_id"] == tenant_id)
        pct = spent / limit * 100
        level = max((t for t in (0.8, 0.9, 1.0) if pct / 100 >= t), default=None)
        return StubStatus(pct, max(0.0, limit - spent), spent * 30, level is not None, level)


def make_records(n: int = 60) -> list[dict[str, Any]]:
    tenants = ["acme", "globex", "<script>x</script>"]
    providers = [("claude-sonnet", "claude-3-5-sonnet"), ("gpt-4o", "gpt-4o"), ("gpt-mini", "gpt-4o-mini")]
    out = []
    for i in range(n):
        provider, model = providers[i % 3]
        cost = Decimal("0.001234567") * (i % 7 + 1)
        out.append(
            {
                "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                "provider": provider,
                "tenant_id": tenants[i % 3],
                "agent_id": f"agent-{i % 4}",
                "model_id": model,
                "input_tokens": 100 + i,
                "output_tokens": 50 + i,
                "total_tokens": 150 + 2 * i,
                "input_cost_usd": "0",
                "output_cost_usd": str(cost),
                "total_cost_usd": str(cost),
            }
        )
    return out


def make_run() -> RunInfo:
    return RunInfo(
        strategy="priority",
        seed=7,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=60),
        planned_requests=60,
        failed_requests=2,
        breaker_events=[
            BreakerEvent(T0 + timedelta(seconds=20), "claude-sonnet", "closed", "open"),
            BreakerEvent(T0 + timedelta(seconds=23), "claude-sonnet", "open", "half_open"),
            BreakerEvent(T0 + timedelta(seconds=23), "claude-sonnet", "half_open", "closed"),
        ],
        failovers=[
            FailoverEvent(
                T0 + timedelta(seconds=21),
                "acme",
                "agent-1",
                "claude-sonnet",
                "gpt-4o",
                "ServiceUnavailableError",
            )
        ],
        alerts=[AlertEvent(T0 + timedelta(seconds=30), "acme", 0.8, 0.04)],
        faults=[(T0 + timedelta(seconds=19), "claude: down")],
        latencies_ms={"claude-sonnet": [120.0, 150.0, 400.0], "gpt-4o": [90.0, 95.0, 300.0]},
    )


@pytest.fixture
def stub_tracker() -> StubTracker:
    return StubTracker(make_records(), {"acme": 0.05, "globex": 0.5})


@pytest.fixture
def run_info() -> RunInfo:
    return make_run()
