"""The same report as rich tables, for the end of the demo and ``costs`` in a terminal.

Rich degrades to plain text when stdout is not a terminal, so these tables
are also what a CI log shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .data import BreakdownRow, ReportData

__all__ = [
    "breakdown_table",
    "budget_table",
    "events_table",
    "files_table",
    "print_report",
]

_TITLES = {"provider": "provider", "tenant_id": "tenant", "agent_id": "agent", "model_id": "model"}


def _money(value: Decimal | float) -> str:
    return f"${float(value):,.4f}"


def exact(value: Decimal) -> str:
    """Nano-dollar precision, as stored in the ledger."""
    return f"{value:.9f}"


def breakdown_table(dimension: str, rows: Sequence[BreakdownRow], total: Decimal) -> Table:
    title = _TITLES.get(dimension, dimension)
    table = Table(title=f"Cost by {title}", title_justify="left")
    table.add_column(title)
    for name in ("requests", "tokens", "cost (USD)", "share"):
        table.add_column(name, justify="right")
    for r in rows:
        share = float(r.cost_usd / total * 100) if total else 0.0
        table.add_row(r.name, f"{r.requests:,}", f"{r.tokens:,}", exact(r.cost_usd), f"{share:.1f}%")
    table.add_section()
    table.add_row(
        "total",
        f"{sum(r.requests for r in rows):,}",
        f"{sum(r.tokens for r in rows):,}",
        f"{sum((r.cost_usd for r in rows), Decimal(0)):f}",
        "",
        style="bold",
    )
    return table


def budget_table(data: ReportData) -> Table:
    table = Table(title="Budgets (this month) with forecasts", title_justify="left")
    table.add_column("tenant")
    for name in ("spent", "limit", "used", "remaining", "forecast/month"):
        table.add_column(name, justify="right")
    table.add_column("alert")
    for b in data.budgets:
        style = "red" if b.percentage_used >= 100 else "yellow" if b.alert_level is not None else "green"
        alert = f"{b.alert_level * 100:.0f}%" if b.alert_level is not None else "-"
        over = " (over)" if b.projected_monthly_usd > b.limit_usd else ""
        table.add_row(
            b.tenant_id,
            _money(b.spent_usd),
            _money(b.limit_usd),
            f"[{style}]{b.percentage_used:.1f}%[/]",
            _money(b.remaining_usd),
            _money(b.projected_monthly_usd) + over,
            alert,
        )
    return table


def events_table(data: ReportData) -> Table:
    """Breaker transitions in order, plus failover and alert counts."""
    table = Table(title="Circuit breaker transitions", title_justify="left")
    table.add_column("time (UTC)")
    table.add_column("provider")
    table.add_column("transition")
    run = data.run
    colors = {"open": "red", "half_open": "yellow", "closed": "green"}
    for e in run.breaker_events if run else []:
        table.add_row(
            e.at.strftime("%H:%M:%S.%f")[:-3],
            e.provider,
            f"{e.old_state} → [{colors.get(e.new_state, 'white')}]{e.new_state}[/]",
        )
    if run is None or not run.breaker_events:
        table.add_row("-", "-", "no transitions")
    return table


def files_table(paths: Sequence[Path]) -> Table:
    table = Table(title="Files written", title_justify="left")
    table.add_column("file")
    table.add_column("size", justify="right")
    for p in paths:
        size = p.stat().st_size if p.exists() else 0
        table.add_row(str(p), f"{size:,} B")
    return table


def print_report(console: Console, data: ReportData) -> None:
    total = data.total_cost_usd
    for dimension in ("provider", "tenant_id", "agent_id", "model_id"):
        console.print(breakdown_table(dimension, data.breakdown(dimension), total))
    if data.budgets:
        console.print(budget_table(data))
