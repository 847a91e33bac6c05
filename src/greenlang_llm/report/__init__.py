"""Cost reports: the data gathered from a ledger, terminal tables, and one self-contained HTML page.

``collect_report_data(tracker, run=...)`` reads a ``CostTracker`` through its
public API; ``render_html``/``write_html`` and ``print_report`` present it.
The demo and ``greenlang-llm costs report`` share this path, so a page rebuilt
from a ledger looks like the demo's (minus what only a live run knows).
"""

from __future__ import annotations

from .data import (
    AlertEvent,
    BreakdownRow,
    BreakerEvent,
    BudgetRow,
    FailoverEvent,
    ReportData,
    RunInfo,
    UsageRecord,
    collect_report_data,
    percentile,
)
from .html import render_html, write_html

__all__ = [
    "AlertEvent",
    "BreakdownRow",
    "BreakerEvent",
    "BudgetRow",
    "FailoverEvent",
    "ReportData",
    "RunInfo",
    "UsageRecord",
    "collect_report_data",
    "percentile",
    "render_html",
    "write_html",
]
