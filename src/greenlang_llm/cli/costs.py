"""``greenlang-llm costs``: read any ledger from the command line.

``summary``, ``timeseries``, ``export`` and ``budgets`` print a table, CSV or
JSON; ``report --html FILE`` writes the same self-contained page the demo
writes. Everything goes through ``CostTracker``'s public API, so the command
works on the embedded SQLite file and on a shared PostgreSQL ledger alike.
Bad input (unknown tenant, unparsable or reversed dates, a missing ledger file)
is a :class:`UsageError`: one line, exit 2, and the ledger is never created
by mistake.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from . import UsageError

__all__ = ["add_parser", "run"]

ACTIONS = ("summary", "timeseries", "export", "budgets", "report")
GRANULARITIES = ("hourly", "daily", "monthly")
FORMATS = ("table", "csv", "json")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "costs",
        help="cost summaries, time series, exports, budgets and the HTML report",
        description="Read any cost ledger: summaries, time series, exports, budgets, and the HTML report.",
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument(
        "--db",
        default=None,
        help="ledger URL or file (default: $GREENLANG_LLM_DB or sqlite:///greenlang_llm.db)",
    )
    p.add_argument("--tenant", default=None, help="only this tenant")
    p.add_argument(
        "--from",
        dest="start",
        default=None,
        metavar="DATE",
        help="start, inclusive (YYYY-MM-DD or ISO 8601; UTC when no offset)",
    )
    p.add_argument(
        "--to",
        dest="end",
        default=None,
        metavar="DATE",
        help="end, inclusive (a bare date means the whole day)",
    )
    p.add_argument("--granularity", default="daily", help="hourly | daily | monthly (timeseries)")
    p.add_argument("--format", default="table", help="table | csv | json")
    p.add_argument("--html", default=None, metavar="FILE", help="report: where to write the page")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write to FILE instead of stdout")


def parse_date(text: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` (start or end of that day) or an ISO 8601 time; naive means UTC."""
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d")
            stamp = datetime.combine(day.date(), time.max if end else time.min)
        else:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"cannot parse date {text!r}: use YYYY-MM-DD or ISO 8601") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _check_args(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    if args.granularity not in GRANULARITIES:
        raise UsageError(f"unknown granularity {args.granularity!r}: use hourly, daily or monthly")
    if args.format not in FORMATS:
        raise UsageError(f"unknown format {args.format!r}: use table, csv or json")
    start = parse_date(args.start) if args.start else None
    end = parse_date(args.end, end=True) if args.end else None
    if start and end and start > end:
        raise UsageError(f"--from {args.start} is after --to {args.end}")
    return start, end


@contextmanager
def open_tracker(db: str | None) -> Iterator[Any]:
    """A ``CostTracker`` on an existing ledger; a missing SQLite file is a usage error."""
    from ..ledger.url import parse_ledger_url, resolve_ledger_url

    try:
        url = resolve_ledger_url(db)
        parsed = parse_ledger_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if parsed.kind == "sqlite" and parsed.path != ":memory:" and not Path(parsed.path).is_file():
        raise UsageError(f"no ledger at {parsed.path} (pass --db URL or set GREENLANG_LLM_DB)")
    from ..cost_tracker import CostTracker

    try:
        tracker = CostTracker(storage=url)
    except Exception as exc:  # not a ledger, unreachable server, bad schema: one line, exit 2
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(f"cannot open ledger {db or url}: {type(exc).__name__}: {first_line}") from None
    try:
        yield tracker
    finally:
        tracker.close()


def _known_tenants(tracker: Any) -> set[str]:
    tenants = set(_breakdown(tracker.get_summary().breakdown_by_tenant))
    lister = getattr(tracker, "list_budgets", None)
    if callable(lister):
        tenants |= set(lister())
    return tenants


def _check_tenant(tracker: Any, tenant: str | None) -> None:
    if tenant is None:
        return
    known = _known_tenants(tracker)
    if tenant not in known:
        try:
            tracker.check_budget(tenant)
            return
        except KeyError:
            pass
        hint = ", ".join(sorted(known)[:10]) or "none"
        raise UsageError(f"unknown tenant {tenant!r} (ledger has: {hint})")


def _cost(value: Any) -> float:
    if isinstance(value, dict):
        for key in ("total_cost_usd", "cost_usd", "cost"):
            if key in value:
                return float(value[key])
        return 0.0
    return float(value)


def _breakdown(value: Any) -> dict[str, float]:
    return {str(k): _cost(v) for k, v in dict(value or {}).items()}


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _print_tables(args: argparse.Namespace, *tables: Any) -> None:
    from rich.console import Console

    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                console = Console(file=fh, width=120, no_color=True)
                for t in tables:
                    console.print(t)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        return
    console = Console()
    for t in tables:
        console.print(t)


def _summary(args: argparse.Namespace, tracker: Any, start: datetime | None, end: datetime | None) -> None:
    s = tracker.get_summary(start_date=start, end_date=end, tenant_id=args.tenant)
    dims = {
        name: _breakdown(getattr(s, f"breakdown_by_{name}"))
        for name in ("provider", "tenant", "agent", "model")
    }
    if args.format == "json":
        payload = {
            "total_cost_usd": float(s.total_cost_usd),
            "total_tokens": int(s.total_tokens),
            "total_requests": int(s.total_requests),
            **{f"breakdown_by_{k}": v for k, v in dims.items()},
        }
        _emit(args, json.dumps(payload, indent=2) + "\n")
    elif args.format == "csv":
        rows = [["total", "all", f"{float(s.total_cost_usd):.9f}"]]
        rows += [[dim, name, f"{cost:.9f}"] for dim, d in dims.items() for name, cost in sorted(d.items())]
        _emit(args, _csv_text(["dimension", "name", "cost_usd"], rows))
    else:
        from rich.table import Table

        head = Table(title="Cost summary", title_justify="left")
        for col in ("total cost (USD)", "tokens", "requests"):
            head.add_column(col, justify="right")
        head.add_row(
            f"{float(s.total_cost_usd):,.6f}", f"{int(s.total_tokens):,}", f"{int(s.total_requests):,}"
        )
        tables = [head]
        for dim, d in dims.items():
            t = Table(title=f"By {dim}", title_justify="left")
            t.add_column(dim)
            t.add_column("cost (USD)", justify="right")
            for name, cost in sorted(d.items(), key=lambda kv: -kv[1]):
                t.add_row(name, f"{cost:,.6f}")
            tables.append(t)
        _print_tables(args, *tables)


def _timeseries(args: argparse.Namespace, tracker: Any, start: datetime | None, end: datetime | None) -> None:
    points = tracker.get_time_series(start, end, granularity=args.granularity, tenant_id=args.tenant)
    rows = [(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC), float(cost)) for stamp, cost in points]
    if args.format == "json":
        _emit(
            args, json.dumps([{"timestamp": t.isoformat(), "cost_usd": c} for t, c in rows], indent=2) + "\n"
        )
    elif args.format == "csv":
        _emit(args, _csv_text(["timestamp", "cost_usd"], [[t.isoformat(), f"{c:.9f}"] for t, c in rows]))
    else:
        from rich.table import Table

        t = Table(
            title=f"Cost per {args.granularity.removesuffix('ly').replace('dai', 'day')} bucket (UTC)",
            title_justify="left",
        )
        t.add_column("bucket start")
        t.add_column("cost (USD)", justify="right")
        for stamp, cost in rows:
            t.add_row(stamp.strftime("%Y-%m-%d %H:%M"), f"{cost:,.6f}")
        _print_tables(args, t)


def _export(args: argparse.Namespace, tracker: Any, start: datetime | None, end: datetime | None) -> None:
    fmt = "json" if args.format == "json" else "csv"
    fd, tmp = tempfile.mkstemp(prefix="greenlang-export-", suffix="." + fmt)
    os.close(fd)
    try:
        # the ledger filters by tenant in SQL; with --tenant the summary is that tenant's
        if fmt == "json":
            tracker.export_json(
                tmp, start_date=start, end_date=end, include_summary=True, tenant_id=args.tenant
            )
            payload = json.loads(Path(tmp).read_text(encoding="utf-8"))
            text = json.dumps(payload, indent=2) + "\n"
        else:
            tracker.export_csv(tmp, start_date=start, end_date=end, tenant_id=args.tenant)
            text = Path(tmp).read_text(encoding="utf-8")
    finally:
        os.unlink(tmp)
    _emit(args, text)


def _budgets(args: argparse.Namespace, tracker: Any) -> None:
    from ..report.data import budget_configs, budget_row

    if args.tenant is not None:
        row = budget_row(tracker, args.tenant)
        if row is None:
            raise UsageError(f"unknown tenant {args.tenant!r}: no budget set for it")
        rows = [row]
    else:
        configs = budget_configs(tracker)  # once, not once per tenant
        rows = [
            r
            for t in sorted(_known_tenants(tracker))
            if (r := budget_row(tracker, t, configs=configs)) is not None
        ]
    fields = [
        "tenant_id",
        "limit_usd",
        "spent_usd",
        "percentage_used",
        "remaining_usd",
        "projected_monthly_usd",
        "thresholds",
        "alert_level",
    ]
    if args.format == "json":
        _emit(args, json.dumps([{f: getattr(r, f) for f in fields} for r in rows], indent=2) + "\n")
    elif args.format == "csv":
        body = [
            [
                r.tenant_id,
                f"{r.limit_usd:.6f}",
                f"{r.spent_usd:.6f}",
                f"{r.percentage_used:.2f}",
                f"{r.remaining_usd:.6f}",
                f"{r.projected_monthly_usd:.6f}",
                " ".join(str(t) for t in r.thresholds),
                "" if r.alert_level is None else r.alert_level,
            ]
            for r in rows
        ]
        _emit(args, _csv_text(fields, body))
    else:
        from ..report.data import ReportData
        from ..report.terminal import budget_table

        data = ReportData(datetime.now(UTC), None, None, args.tenant, [], rows)
        _print_tables(args, budget_table(data))


def _report(args: argparse.Namespace, tracker: Any, start: datetime | None, end: datetime | None) -> None:
    from ..report import collect_report_data, write_html

    target = Path(args.html or args.output or "greenlang-llm-report.html")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: directory {target.parent} does not exist")
    data = collect_report_data(
        tracker, start=start, end=end, tenant_id=args.tenant, budget_tenants=_known_tenants(tracker)
    )
    try:
        write_html(target, data)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    print(f"wrote {target} ({len(data.records)} records, total ${data.total_cost_usd:.6f})")


def run(args: argparse.Namespace) -> int:
    start, end = _check_args(args)
    with open_tracker(args.db) as tracker:
        _check_tenant(tracker, args.tenant)
        if args.action == "summary":
            _summary(args, tracker, start, end)
        elif args.action == "timeseries":
            _timeseries(args, tracker, start, end)
        elif args.action == "export":
            _export(args, tracker, start, end)
        elif args.action == "budgets":
            _budgets(args, tracker)
        else:
            _report(args, tracker, start, end)
    return 0
