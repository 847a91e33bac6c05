"""Render a :class:`ReportData` as one self-contained HTML page.

Everything the page needs is inside it: CSS in a ``<style>`` block, charts as
inline SVG (``report/svg.py``), no scripts and no external URLs, so it renders
the same offline, from a CI artifact, or attached to an email. All text from the
ledger is escaped: tenant and agent names are caller-controlled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path

from . import svg
from .data import BreakdownRow, ReportData, percentile

__all__ = ["render_html", "write_html"]

_MAX_EVENT_ROWS = 200

_CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--card:#fff;--bg:#f8fafc;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:var(--muted)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:12px;margin:20px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi b{display:block;font-size:20px}
.kpi span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
  padding:16px 18px;margin:0 0 16px}
section h2{margin:0 0 4px;font-size:16px}
section p.note{margin:0 0 10px;color:var(--muted);font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.grid section{margin:0}
@media (max-width:820px){.grid{grid-template-columns:1fr}}
svg.chart{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600}
.state.open{background:#fee2e2;color:#b91c1c}.state.half_open{background:#fef3c7;color:#b45309}
.state.closed{background:#dcfce7;color:#15803d}
footer{color:var(--muted);font-size:12px;text-align:center;margin:24px 0}
"""


def _money(value: Decimal | float) -> str:
    v = float(value)
    return f"${v:,.2f}" if abs(v) >= 1 else f"${v:.4f}"


def _exact(value: Decimal) -> str:
    return f"${value:.9f}"


def _time(stamp: datetime) -> str:
    return stamp.strftime("%H:%M:%S")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def _time_format_for(bucket: timedelta) -> Callable[[datetime], str]:
    if bucket < timedelta(minutes=1):
        return lambda t: t.strftime("%H:%M:%S")
    if bucket < timedelta(days=1):
        return lambda t: t.strftime("%m-%d %H:%M")
    return lambda t: t.strftime("%Y-%m-%d")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(headers)}" style="color:#64748b">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _breakdown_table(title: str, rows: list[BreakdownRow], total: Decimal) -> str:
    body = [
        [
            escape(r.name),
            f"{r.requests:,}",
            f"{r.tokens:,}",
            escape(_exact(r.cost_usd)),
            f"{(r.cost_usd / total * 100) if total else 0:.1f}%",
        ]
        for r in rows
    ]
    return (
        f"<section><h2>By {escape(title)}</h2>"
        + _table([title, "requests", "tokens", "cost (exact)", "share"], body, numeric=(1, 2, 3, 4))
        + "</section>"
    )


def _state(name: str) -> str:
    return f'<span class="state {escape(name)}">{escape(name)}</span>'


def _kpis(data: ReportData) -> str:
    items = [
        (_money(data.total_cost_usd), "total spend"),
        (f"{len(data.records):,}", "billed requests"),
        (f"{data.total_tokens:,}", "tokens"),
        (str(len({r.tenant_id for r in data.records})), "tenants"),
    ]
    run = data.run
    if run is not None:
        opens = sum(1 for e in run.breaker_events if e.new_state == "open")
        items += [
            (str(len(run.failovers)), "failovers"),
            (str(opens), "breaker opens"),
            (str(len(run.alerts)), "budget alerts"),
            (str(run.failed_requests), "failed requests"),
        ]
    cards = "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in items)
    return f'<div class="kpis">{cards}</div>'


def _header(data: ReportData) -> str:
    run = data.run
    title = run.title if run else "greenlang-llm cost report"
    bits = [f"generated {data.generated_at:%Y-%m-%d %H:%M:%S} UTC"]
    if data.records:
        bits.append(
            f"records {data.records[0].timestamp:%Y-%m-%d %H:%M:%S} → "
            f"{data.records[-1].timestamp:%Y-%m-%d %H:%M:%S} UTC"
        )
    if data.tenant_id:
        bits.append(f"tenant {data.tenant_id}")
    if run is not None:
        bits.append(
            f"{run.mode}, strategy {run.strategy or 'n/a'}"
            + (f", seed {run.seed}" if run.seed is not None else "")
            + (f", {run.duration_s:.1f} s" if run.duration_s else "")
        )
    return f"<header><h1>{escape(title)}</h1><p>{escape(' · '.join(bits))}</p></header>"


def _budgets(data: ReportData) -> str:
    bars = [
        svg.BudgetBar(b.tenant_id, b.spent_usd, b.limit_usd, b.thresholds, b.projected_monthly_usd)
        for b in data.budgets
    ]
    rows = [
        [
            escape(b.tenant_id),
            _money(b.spent_usd),
            _money(b.limit_usd),
            f"{b.percentage_used:.1f}%",
            _money(b.remaining_usd),
            _money(b.projected_monthly_usd),
            escape(", ".join(f"{t * 100:.0f}%" for t in b.thresholds)),
            f"{b.alert_level * 100:.0f}%" if b.alert_level is not None else "—",
        ]
        for b in data.budgets
    ]
    table = _table(
        [
            "tenant",
            "spent (month)",
            "limit",
            "used",
            "remaining",
            "forecast (month)",
            "alert thresholds",
            "alert level",
        ],
        rows,
        numeric=(1, 2, 3, 4, 5),
    )
    return (
        "<section><h2>Budget use against limits and alert thresholds</h2>"
        '<p class="note">Month-to-date spend per tenant; dashed ticks are alert thresholds. '
        "The forecast extrapolates this month's run rate to the whole month.</p>"
        + svg.budget_chart(bars, label="Budget use per tenant")
        + table
        + "</section>"
    )


def _latency(data: ReportData) -> str:
    run = data.run
    samples = run.latencies_ms if run else {}
    rows = [
        svg.LatencyRow(name, percentile(v, 50), percentile(v, 95), percentile(v, 99), max(v), len(v))
        for name, v in sorted(samples.items())
        if v
    ]
    table = _table(
        ["provider", "calls", "p50", "p95", "p99", "max"],
        [
            [
                escape(r.provider),
                str(r.count),
                f"{r.p50_ms:.0f} ms",
                f"{r.p95_ms:.0f} ms",
                f"{r.p99_ms:.0f} ms",
                f"{r.max_ms:.0f} ms",
            ]
            for r in rows
        ],
        numeric=(1, 2, 3, 4, 5),
    )
    return (
        "<section><h2>Latency by provider</h2>"
        '<p class="note">Successful calls as the caller saw them: bar to the median, band to p95, '
        "line to p99, ring at the max.</p>"
        + svg.latency_chart(rows, label="Latency by provider", width=760)
        + table
        + "</section>"
    )


def _events(data: ReportData) -> str:
    run = data.run
    if run is None:
        return (
            '<section><h2>Failovers and breaker transitions</h2><p class="note">Recorded by a live '
            "run (greenlang-llm demo); a ledger alone does not hold them.</p></section>"
        )
    breaker = _table(
        ["time (UTC)", "provider", "from", "to"],
        [
            [_time(e.at), escape(e.provider), _state(e.old_state), _state(e.new_state)]
            for e in run.breaker_events[:_MAX_EVENT_ROWS]
        ],
    )
    failovers = _table(
        ["time (UTC)", "tenant", "agent", "failed on", "served by", "error"],
        [
            [
                _time(f.at),
                escape(f.tenant_id),
                escape(f.agent_id),
                escape(f.from_provider),
                escape(f.to_provider),
                escape(f.error),
            ]
            for f in run.failovers[:_MAX_EVENT_ROWS]
        ],
    )
    more = len(run.failovers) - _MAX_EVENT_ROWS
    extra = f'<p class="note">… and {more} more failovers</p>' if more > 0 else ""
    faults = _table(["time (UTC)", "fault injected"], [[_time(t), escape(d)] for t, d in run.faults])
    alerts = _table(
        ["time (UTC)", "tenant", "threshold", "spend at alert"],
        [
            [_time(a.at), escape(a.tenant_id), f"{a.threshold * 100:.0f}%", _money(a.current_cost_usd)]
            for a in run.alerts
        ],
        numeric=(2, 3),
    )
    return (
        '<div class="grid"><section><h2>Circuit breaker transitions</h2>' + breaker + "</section>"
        "<section><h2>Faults injected</h2>"
        + faults
        + '<h2 style="margin-top:14px">Budget alerts fired</h2>'
        + alerts
        + "</section></div>"
        '<section><h2>Failovers</h2><p class="note">Requests whose first provider failed and that another '
        "provider answered.</p>" + failovers + extra + "</section>"
    )


def render_html(data: ReportData) -> str:
    """The whole page as a string (UTF-8, no external references)."""
    bucket = data.bucket()
    total = data.total_cost_usd
    series = data.cumulative_by_tenant()
    over_time = svg.line_chart(
        series, label="Cumulative cost per tenant", time_format=_time_format_for(bucket)
    )
    by_provider, by_model = data.breakdown("provider"), data.breakdown("model_id")
    providers = svg.bar_chart([(r.name, float(r.cost_usd)) for r in by_provider], label="Cost by provider")
    models = svg.bar_chart([(r.name, float(r.cost_usd)) for r in by_model], label="Cost by model")
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.run.title if data.run else 'greenlang-llm cost report')}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        _header(data),
        _kpis(data),
        f'<section><h2>Cost over time per tenant</h2><p class="note">Cumulative spend, '
        f"{_duration(bucket)} buckets (UTC).</p>{over_time}</section>",
        '<div class="grid"><section><h2>Cost by provider</h2>' + providers + "</section>"
        "<section><h2>Cost by model</h2>" + models + "</section></div>",
        _budgets(data),
        _latency(data),
        _events(data),
        '<div class="grid">',
        _breakdown_table("tenant", data.breakdown("tenant_id"), total),
        _breakdown_table("agent", data.breakdown("agent_id"), total),
        _breakdown_table("provider", by_provider, total),
        _breakdown_table("model", by_model, total),
        "</div>",
        f"<footer>greenlang-llm · total {escape(_exact(total))} over {len(data.records):,} records · "
        "self-contained report, no network needed</footer>",
        "</main></body></html>",
    ]
    return "".join(parts)


def write_html(path: str | Path, data: ReportData) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a page."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(target)
    return target
