"""The demo's terminal output while it runs: a live dashboard, plain log lines, or nothing.

Why three modes: on a terminal the point is to *see* the breaker open and the
spend climb, so rich redraws a progress bar and a provider table in place; in
CI logs (stdout not a TTY) redraws become garbage, so each event is one plain
line and progress is printed every 10%; ``--quiet`` prints only the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ._demo_observe import Event
from ._demo_run import DemoState

__all__ = ["dashboard", "plain_log", "progress_view"]

_STATE_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def provider_table(state: DemoState) -> Table:
    table = Table(title="Providers", title_justify="left", expand=False)
    for col in ("route", "provider", "model", "breaker", "health"):
        table.add_column(col)
    for col in ("calls", "failed", "ok %", "avg ms", "spend"):
        table.add_column(col, justify="right")
    for tier, router in state.routers.items():
        for name, m in router.get_metrics()["providers"].items():
            breaker = str(m["circuit_breaker_state"])
            table.add_row(
                tier, name, state.labels.get((tier, name), ""),
                Text(breaker, style=_STATE_STYLE.get(breaker, "")),
                Text("up", style="green") if m.get("healthy", True) else Text("down", style="red"),
                f"{m['total_requests']:,}", f"{m.get('failed_requests', 0):,}", f"{m['success_rate']:.0f}",
                f"{m['avg_latency_ms']:.0f}",
                f"${m['total_cost_usd']:.4f}",
            )
    return table


def _status_line(state: DemoState) -> Text:
    text = Text()
    text.append(f"done {state.done}/{state.settings.requests}  ")
    text.append(f"failed {state.failed}  ", style="red" if state.failed else "")
    text.append(f"failovers {len(state.failovers)}  ", style="yellow" if state.failovers else "")
    text.append(f"alerts {len(state.alerts)}  ", style="yellow" if state.alerts else "")
    text.append(f"spend ${state.spend_usd:.4f}", style="bold")
    for fault in state.active_faults.values():
        text.append(f"\nfault active: {fault}", style="magenta")
    return text


def _events_panel(state: DemoState) -> Panel:
    lines = Text()
    for i, event in enumerate(list(state.observer.recent)):
        lines.append(("\n" if i else "") + f"{event.at:%H:%M:%S} ", style="dim")
        lines.append(event.text, style=event.style)
    return Panel(lines or Text("(no events yet)", style="dim"), title="events", title_align="left")


@contextlib.asynccontextmanager
async def dashboard(console: Console, state: DemoState) -> AsyncIterator[None]:
    """Redraw progress, provider table and events in place until the block ends."""
    progress = Progress(TextColumn("[bold]requests"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    task = progress.add_task("requests", total=state.settings.requests)

    def render() -> RenderableType:
        progress.update(task, completed=state.done)
        return Group(progress, _status_line(state), provider_table(state), _events_panel(state))

    original = sys.stderr
    with Live(console=console, get_renderable=render, refresh_per_second=8, transient=False):
        # Log lines (LOG_LEVEL set) go through Live's stderr proxy, printed above the dashboard
        # instead of tearing it apart.
        handlers = [h for h in logging.getLogger().handlers
                    if isinstance(h, logging.StreamHandler) and h.stream is original]
        for handler in handlers:
            handler.setStream(sys.stderr)
        try:
            yield
        finally:
            for handler in handlers:
                handler.setStream(original)


def _stamp(state: DemoState, at: datetime) -> str:
    if state.started_at is None:
        return "[  setup ]"
    return f"[+{(at - state.started_at).total_seconds():6.1f}s]"


@contextlib.asynccontextmanager
async def plain_log(state: DemoState, stream: Any = None) -> AsyncIterator[None]:
    """One line per event and a progress line every 10% (for logs and pipes)."""
    out = stream or sys.stdout

    def on_event(event: Event) -> None:
        print(f"{_stamp(state, event.at)} {event.text}", file=out, flush=True)

    printed = [0]

    def report() -> None:
        printed[0] = state.done
        print(f"{_stamp(state, datetime.now(UTC))} progress {state.done}/{state.settings.requests}: "
              f"failed {state.failed}, failovers {len(state.failovers)}, alerts {len(state.alerts)}, "
              f"spend ${state.spend_usd:.4f}", file=out, flush=True)

    async def progress() -> None:
        step = max(1, state.settings.requests // 10)
        while True:
            await asyncio.sleep(0.2)
            if state.done >= printed[0] + step:
                report()

    state.observer.listeners.append(on_event)
    ticker = asyncio.create_task(progress())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        state.observer.listeners.remove(on_event)
        if state.done != printed[0]:
            report()


@contextlib.asynccontextmanager
async def progress_view(mode: str, console: Console, state: DemoState) -> AsyncIterator[None]:
    """``live``, ``plain`` or ``quiet``."""
    if mode == "live":
        async with dashboard(console, state):
            yield
    elif mode == "plain":
        async with plain_log(state):
            yield
    else:
        yield
