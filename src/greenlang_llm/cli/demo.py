"""``greenlang-llm demo``: the whole project in about a minute, with no keys and no network.

Starts the embedded simulator playing the Anthropic and OpenAI APIs, routes a
few hundred requests from several tenants and agents through two
``LLMRouter`` routes, knocks the preferred vendor over part-way and later
rate-limits it, and tracks every answer in a fresh SQLite ledger with
per-tenant budgets. It ends with summary tables and writes ``costs.csv``,
``costs.json`` and a self-contained ``report.html`` into ``--out``.
See docs/demo.md for what to look at.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from . import UsageError

__all__ = ["add_parser", "run"]

DEFAULT_REQUESTS = 300
LIVE_DEFAULT_REQUESTS = 12
MAX_REQUESTS = 100_000


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="run the end-to-end demo on the embedded simulator",
        description="The whole project in about a minute, with no keys and no network: failover, "
        "circuit breakers, budget alerts and a cost report (see docs/demo.md).")
    p.add_argument("--requests", type=int, default=None, metavar="N",
                   help=f"requests to send (default {DEFAULT_REQUESTS}; {LIVE_DEFAULT_REQUESTS} with --live)")
    p.add_argument("--seed", type=int, default=7, metavar="S", help="workload and fault seed (default 7)")
    p.add_argument("--strategy", default="priority",
                   help="priority | least_cost | least_latency | round_robin | random (default priority)")
    p.add_argument("--out", default="greenlang-llm-demo", metavar="DIR",
                   help="where to write costs.csv, costs.json, report.html (default ./greenlang-llm-demo/)")
    p.add_argument("--quiet", action="store_true", help="no progress output; print only the result")
    p.add_argument("--live", action="store_true",
                   help="call the real APIs with ANTHROPIC_API_KEY / OPENAI_API_KEY (costs real money)")
    p.add_argument("--time-scale", type=float, default=1.0, help=argparse.SUPPRESS)


def _settings(args: argparse.Namespace) -> Any:
    from ..strategies import parse_strategy
    from ._demo_run import DemoSettings, check_out_dir

    try:
        strategy = parse_strategy(args.strategy).value
    except (ValueError, KeyError):
        raise UsageError(f"unknown strategy {args.strategy!r}: use priority, least_cost, least_latency, "
                         "round_robin or random") from None
    requests = args.requests
    if requests is None:
        requests = LIVE_DEFAULT_REQUESTS if args.live else DEFAULT_REQUESTS
    if not 1 <= requests <= MAX_REQUESTS:
        raise UsageError(f"--requests must be between 1 and {MAX_REQUESTS}, got {requests}")
    if not args.time_scale > 0:
        raise UsageError("--time-scale must be > 0")
    if args.live and not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("OPENAI_API_KEY")):
        raise UsageError("--live needs ANTHROPIC_API_KEY and/or OPENAI_API_KEY in the environment "
                         "(run without --live to use the embedded simulator)")
    out_dir = Path(args.out).expanduser()
    try:
        check_out_dir(out_dir)
    except OSError as exc:
        raise UsageError(f"cannot write to --out {out_dir}: {exc.strerror or exc}") from None
    return DemoSettings(requests=requests, seed=args.seed, strategy=strategy, out_dir=out_dir,
                        live=args.live, time_scale=args.time_scale)


def _mode(args: argparse.Namespace) -> str:
    if args.quiet:
        return "quiet"
    return "live" if sys.stdout.isatty() else "plain"


async def _main(settings: Any, mode: str, console: Any) -> tuple[Any, Any, Any]:
    from ._demo_run import DemoState, run_demo
    from ._demo_ui import progress_view

    state = DemoState(settings)
    if mode != "quiet":
        where = "real providers" if settings.live else "the embedded simulator (no keys, no network)"
        console.print(f"greenlang-llm demo: {settings.requests} requests, strategy {settings.strategy}, "
                      f"seed {settings.seed}, on {where}")
    async with progress_view(mode, console, state):
        run_info, tracker = await run_demo(settings, state)
    return state, run_info, tracker


def _write_outputs(settings: Any, tracker: Any, run_info: Any) -> tuple[Any, list[Path]]:
    from ..report import collect_report_data, write_html

    out: Path = settings.out_dir
    csv_path, json_path, html_path = out / "costs.csv", out / "costs.json", out / "report.html"
    tracker.export_csv(csv_path)
    tracker.export_json(json_path, include_summary=True)
    data = collect_report_data(tracker, run=run_info)
    write_html(html_path, data)
    return data, [csv_path, json_path, html_path, out / "ledger.db"]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _print_summary(console: Any, data: Any, state: Any, paths: list[Path]) -> None:
    from rich.table import Table

    from ..report.terminal import events_table, files_table, print_report

    console.print()
    print_report(console, data)
    console.print(events_table(data))
    alerts = Table(title="Budget alerts fired", title_justify="left")
    for col in ("time (UTC)", "tenant", "threshold", "spend at alert"):
        alerts.add_column(col)
    for a in data.run.alerts:
        alerts.add_row(f"{a.at:%H:%M:%S}", a.tenant_id, f"{a.threshold:.0%}", f"${a.current_cost_usd:.4f}")
    console.print(alerts)
    run = data.run
    console.print(
        f"{len(data.records)} requests billed, {run.failed_requests} failed, {len(run.failovers)} failovers, "
        f"{_count(sum(1 for e in run.breaker_events if e.new_state == 'open'), 'breaker open')}, "
        f"{_count(len(run.alerts), 'budget alert')}, "
        f"total ${data.total_cost_usd:.6f} in {run.duration_s:.1f} s"
    )
    console.print(files_table(paths))
    console.print(f"Open the report: file://{paths[2].resolve()}")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    settings = _settings(args)
    mode = _mode(args)
    console = Console() if mode == "live" else Console(width=120, no_color=True, force_terminal=False)
    # The demo shows breaker and retry events itself; the library's own warnings would only
    # repeat them. An explicit LOG_LEVEL still wins.
    package_logger = logging.getLogger("greenlang_llm")
    saved_level = package_logger.level
    if "LOG_LEVEL" not in os.environ:
        package_logger.setLevel(logging.ERROR)
    try:
        state, run_info, tracker = asyncio.run(_main(settings, mode, console))
    except (KeyboardInterrupt, UsageError):
        raise
    except Exception as exc:  # one line for users; the traceback with LOG_LEVEL=DEBUG
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        print(f"error: demo failed: {type(exc).__name__}: {exc} (LOG_LEVEL=DEBUG shows the traceback)",
              file=sys.stderr)
        return 1
    finally:
        package_logger.setLevel(saved_level)
    try:
        data, paths = _write_outputs(settings, tracker, run_info)
    finally:
        tracker.close()
    if mode == "quiet":
        print(f"demo: {len(data.records)} billed, {state.failed} failed, "
              f"{len(run_info.failovers)} failovers, total ${data.total_cost_usd:.6f}; "
              f"wrote {', '.join(str(p) for p in paths[:3])}")
    else:
        _print_summary(console, data, state, paths)
    if state.failed == settings.requests:
        print("error: every request failed", file=sys.stderr)
        return 1
    return 0
