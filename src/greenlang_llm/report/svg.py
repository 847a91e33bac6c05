"""Small inline-SVG chart primitives for the self-contained HTML report.

Why our own: the report must open anywhere — offline, in a mail attachment, in
CI artifacts — so it cannot load a charting library from a CDN, and a vendored
JS bundle would dwarf the data. Four chart shapes cover what the report needs
(lines over time, horizontal bars, budget gauges, latency ranges); each returns
one ``<svg>`` string with a ``viewBox`` so it scales with the page, and native
``<title>`` tooltips instead of scripts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

__all__ = [
    "PALETTE",
    "BudgetBar",
    "LatencyRow",
    "bar_chart",
    "budget_chart",
    "latency_chart",
    "line_chart",
    "nice_ticks",
]

PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#b45309")
_AXIS = "#94a3b8"
_GRID = "#e2e8f0"
_TEXT = "#334155"
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``maximum`` (1-2-5 steps)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum - 1e-12:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def label_width(names: Iterable[str], char_px: float = 7.0) -> int:
    """Room for the longest label at 12px (capped: longer labels are cut with an ellipsis)."""
    longest = max((min(len(n), 30) for n in names), default=8)
    return int(min(230, max(70, longest * char_px + 14)))


def _money(value: float) -> str:
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:.3f}"
    return f"${value:.4g}"


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}" class="chart" {_FONT} font-size="12">'
        f"<title>{escape(label)}</title>"
    )


def _empty(width: int, height: int, label: str, message: str) -> str:
    return (
        _svg_open(width, height, label)
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{_AXIS}">'
        + f"{escape(message)}</text></svg>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> str:
    parts = []
    for i, name in enumerate(names):
        yy = y + i * 18
        parts.append(
            f'<rect x="{x:.1f}" y="{yy - 9:.1f}" width="12" height="12" rx="2" fill="{color(i)}"/>'
            f'<text x="{x + 18:.1f}" y="{yy + 1:.1f}" fill="{_TEXT}">{escape(name)}</text>'
        )
    return "".join(parts)


def line_chart(
    series: dict[str, list[tuple[datetime, float]]],
    *,
    label: str,
    time_format: Callable[[datetime], str],
    value_format: Callable[[float], str] = _money,
    width: int = 760,
    height: int = 300,
) -> str:
    """One line per series over a shared time axis; points carry hover tooltips."""
    points = [p for values in series.values() for p in values]
    if not points:
        return _empty(width, height, label, "no data in this range")
    legend_w = 150
    left, right, top, bottom = 64, legend_w + 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    span = (t1 - t0) or 1.0
    ticks = nice_ticks(max(p[1] for p in points))
    top_value = ticks[-1] or 1.0

    def xy(t: datetime, v: float) -> tuple[float, float]:
        return left + (t.timestamp() - t0) / span * plot_w, top + plot_h - v / top_value * plot_h

    out = [_svg_open(width, height, label)]
    for tick in ticks:
        y = top + plot_h - tick / top_value * plot_h
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{_TEXT}">'
            f"{escape(value_format(tick))}</text>"
        )
    for i in range(5):
        x = left + plot_w * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        stamp = datetime.fromtimestamp(t0 + span * i / 4, tz=points[0][0].tzinfo)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="{_AXIS}"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="{anchor}" fill="{_TEXT}">'
            f"{escape(time_format(stamp))}</text>"
        )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{_AXIS}"/>'
    )
    for i, (name, values) in enumerate(series.items()):
        if not values:
            continue
        coords = [xy(when, v) for when, v in values]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(
            f'<polyline class="series" fill="none" stroke="{color(i)}" stroke-width="2" '
            f'stroke-linejoin="round" points="{path}"/>'
        )
        step = max(1, len(values) // 60)
        for (when, v), (px, py) in list(zip(values, coords, strict=True))[::step]:
            tip = f"{name} · {time_format(when)} · {value_format(v)}"
            out.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color(i)}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    out.append(_legend(list(series), width - legend_w, top + 12))
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    label: str,
    value_format: Callable[[float], str] = _money,
    width: int = 370,
    bar_height: int = 22,
) -> str:
    """Horizontal bars, largest first, each labelled with its value and share."""
    rows = sorted(items, key=lambda kv: kv[1], reverse=True)
    if not rows:
        return _empty(width, 80, label, "no data in this range")
    label_w, value_w, gap = label_width(name for name, _ in rows), 100, 8
    height = len(rows) * (bar_height + gap) + 12
    plot_w = width - label_w - value_w
    top_value = max(v for _, v in rows) or 1.0
    total = sum(v for _, v in rows) or 1.0
    out = [_svg_open(width, height, label)]
    for i, (name, value) in enumerate(rows):
        y = 6 + i * (bar_height + gap)
        w = max(1.0, value / top_value * plot_w) if value > 0 else 0.0
        share = value / total * 100
        short = name if len(name) <= 30 else name[:29] + "…"
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'fill="{_TEXT}">{escape(short)}</text>'
        )
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" rx="3" '
            f'fill="{color(i)}"><title>{escape(f"{name}: {value_format(value)} ({share:.1f}%)")}'
            f"</title></rect>"
        )
        out.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar_height * 0.7:.1f}" fill="{_TEXT}">'
            f"{escape(value_format(value))} · {share:.0f}%</text>"
        )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class BudgetBar:
    tenant: str
    spent_usd: float
    limit_usd: float
    thresholds: tuple[float, ...]
    projected_usd: float | None = None


def budget_chart(rows: Sequence[BudgetBar], *, label: str, width: int = 760) -> str:
    """Spend against each tenant's limit, with the alert thresholds drawn as ticks.

    The axis runs to 100% or the largest overshoot (capped at 200%, beyond which
    the bar ends in an arrow), so a tenant over budget is obvious at a glance.
    """
    if not rows:
        return _empty(width, 80, label, "no budgets set")
    label_w, right, bar_h, gap, top = 120, 170, 24, 22, 24
    plot_w = width - label_w - right
    used = [r.spent_usd / r.limit_usd if r.limit_usd > 0 else 0.0 for r in rows]
    scale_max = min(2.0, max([1.0, *used, *(max(r.thresholds, default=1.0) for r in rows)]))
    height = top + len(rows) * (bar_h + gap) + 8
    out = [_svg_open(width, height, label)]
    for pct in nice_ticks(scale_max * 100, 4):
        if pct > scale_max * 100 + 1e-9:
            break
        x = label_w + pct / 100 / scale_max * plot_w
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 6}" y2="{height - 8}" stroke="{_GRID}"/>')
        out.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="{_AXIS}">{pct:.0f}%</text>')
    for i, (row, share) in enumerate(zip(rows, used, strict=True)):
        y = top + i * (bar_h + gap)
        crossed = [t for t in row.thresholds if share >= t]
        fill = "#dc2626" if share >= 1.0 else "#f59e0b" if crossed else "#16a34a"
        w = min(share, scale_max) / scale_max * plot_w
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end" fill="{_TEXT}">'
            f"{escape(row.tenant)}</text>"
        )
        out.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" rx="4" fill="#f1f5f9"/>')
        tip = f"{row.tenant}: {_money(row.spent_usd)} of {_money(row.limit_usd)} ({share * 100:.1f}%)"
        out.append(
            f'<rect class="budget" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="4" '
            f'fill="{fill}"><title>{escape(tip)}</title></rect>'
        )
        if share > scale_max:
            ax = label_w + plot_w
            out.append(f'<path d="M{ax - 2:.1f},{y} l10,{bar_h / 2} l-10,{bar_h / 2} z" fill="{fill}"/>')
        for t in row.thresholds:
            if t > scale_max:
                continue
            x = label_w + t / scale_max * plot_w
            out.append(
                f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 4}" y2="{y + bar_h + 4}" '
                f'stroke="#0f172a" stroke-width="2" stroke-dasharray="3 2">'
                f"<title>alert at {t * 100:.0f}%</title></line>"
            )
        text = f"{share * 100:.0f}% of {_money(row.limit_usd)}"
        out.append(
            f'<text x="{label_w + plot_w + 14}" y="{y + bar_h * 0.45:.1f}" fill="{_TEXT}" '
            f'font-weight="600">{escape(text)}</text>'
        )
        if row.projected_usd is not None:
            proj = f"forecast {_money(row.projected_usd)}/mo"
            out.append(
                f'<text x="{label_w + plot_w + 14}" y="{y + bar_h + 2:.1f}" fill="{_AXIS}">'
                f"{escape(proj)}</text>"
            )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class LatencyRow:
    provider: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    count: int


def latency_chart(rows: Sequence[LatencyRow], *, label: str, width: int = 370) -> str:
    """Per provider: a bar to the median, a whisker to p95/p99, a dot at the max."""
    if not rows:
        return _empty(width, 80, label, "no latency samples (recorded by the demo run only)")
    label_w, right, bar_h, gap, top = label_width(r.provider for r in rows), 40, 18, 26, 22
    plot_w = width - label_w - right
    ticks = nice_ticks(max(r.max_ms for r in rows), 4)
    top_value = ticks[-1] or 1.0
    height = top + len(rows) * (bar_h + gap) + 8

    def x(ms: float) -> float:
        return label_w + ms / top_value * plot_w

    out = [_svg_open(width, height, label)]
    for tick in ticks:
        out.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 6}" y2="{height - 8}" stroke="{_GRID}"/>'
        )
        out.append(
            f'<text x="{x(tick):.1f}" y="{top - 10}" text-anchor="middle" fill="{_AXIS}">{tick:.0f} ms</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        mid = y + bar_h / 2
        tip = (
            f"{row.provider}: p50 {row.p50_ms:.0f} ms, p95 {row.p95_ms:.0f} ms, "
            f"p99 {row.p99_ms:.0f} ms, max {row.max_ms:.0f} ms ({row.count} calls)"
        )
        out.append(
            f'<text x="{label_w - 8}" y="{mid + 4:.1f}" text-anchor="end" fill="{_TEXT}">'
            f"{escape(row.provider)}</text>"
        )
        out.append(
            f'<line x1="{x(row.p50_ms):.1f}" x2="{x(row.p99_ms):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{color(i)}" stroke-width="2"/>'
        )
        out.append(
            f'<rect x="{x(row.p50_ms):.1f}" y="{y + 3}" '
            f'width="{max(1.0, x(row.p95_ms) - x(row.p50_ms)):.1f}" '
            f'height="{bar_h - 6}" fill="{color(i)}" opacity="0.35"/>'
        )
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{max(1.0, x(row.p50_ms) - label_w):.1f}" '
            f'height="{bar_h}" rx="3" fill="{color(i)}"><title>{escape(tip)}</title></rect>'
        )
        out.append(
            f'<circle cx="{x(row.max_ms):.1f}" cy="{mid:.1f}" r="3.5" fill="none" stroke="{color(i)}" '
            f'stroke-width="2"><title>{escape(tip)}</title></circle>'
        )
    out.append("</svg>")
    return "".join(out)
