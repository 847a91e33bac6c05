"""Turn one run's results into a terminal table, the docs block and an SVG chart.

The docs page has sections written by other benchmarks; this module rewrites only the
block between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` (creating the section
"Side by side with LiteLLM" if absent). The chart is plain SVG drawn here — no plotting
library — so it renders on GitHub and needs nothing installed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "markdown", "rewrite_docs", "svg_chart", "targets", "terminal"]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
SECTION = "## Side by side with LiteLLM"
COLORS = {"direct": "#888888", "bare": "#2a9d8f", "greenlang": "#1f5fbf", "litellm": "#d1495b"}
LABELS = {
    "direct": "direct to simulator",
    "bare": "bare forwarder",
    "greenlang": "greenlang-llm serve",
    "litellm": "LiteLLM proxy",
}


def _f(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:,.{digits}f}"


def _ratio(value: Any) -> str:
    if value is None:
        return "–"
    return f"1/{1 / value:,.0f}" if 0 < value < 1 else f"{value:,.2f}×"


# ---------------------------------------------------------------- targets


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The other issues' targets next to what this run measured: (target, measured, met?)."""
    rows: list[dict[str, Any]] = []
    lib = (results.get("library") or {}).get("summary") or {}
    seq = (lib.get("sequential") or {}).get("llm_router") or {}
    if "added_p50_ms_vs_litellm" in seq:
        ratio = seq["added_p50_ms_vs_litellm"]
        cpu = seq.get("added_cpu_us_vs_litellm")
        rows.append(
            {
                "target": "router overhead ≤ 1/50 of LiteLLM Router's (sequential, added p50)",
                "measured": f"{_ratio(ratio)} (CPU per call: {_ratio(cpu)})",
                "met": ratio is not None and ratio <= 1 / 50,
            }
        )
    conc = (lib.get("concurrent") or {}).get("llm_router") or {}
    if conc.get("calls_per_s_vs_litellm") is not None:
        rows.append(
            {
                "target": "(no target) LLMRouter calls/s ÷ litellm.Router calls/s at concurrency 50",
                "measured": _ratio(conc["calls_per_s_vs_litellm"]),
                "met": None,
            }
        )
    gw = (results.get("gateway") or {}).get("summary") or {}
    conc_keys = [k for k in gw if k.startswith("plain-c")]
    for key in conc_keys:
        ours = gw[key].get("greenlang", {})
        if "rps_vs_litellm" in ours:
            rows.append(
                {
                    "target": f"gateway ≥ 20× LiteLLM proxy's RPS ({key})",
                    "measured": _ratio(ours["rps_vs_litellm"])
                    + _cpu_note(ours.get("cpu_vs_litellm"), ratio=True)
                    + _errors_note(gw[key]),
                    "met": ours["rps_vs_litellm"] is not None and ours["rps_vs_litellm"] >= 20,
                }
            )
        if "rps_vs_bare" in ours:
            value = ours["rps_vs_bare"]
            rows.append(
                {
                    "target": f"gateway ≥ 60% of the bare forwarder's RPS ({key})",
                    "measured": f"{_f(value, 0, 100)}%"
                    + _cpu_note(ours.get("cpu_vs_bare"), ratio=False)
                    + _errors_note(gw[key], ("direct", "bare", "greenlang")),
                    "met": value is not None and value >= 0.6,
                }
            )
    for key in (k for k in gw if "-rps" in k):
        ours = gw[key].get("greenlang", {})
        if "added_p99" in ours:
            rows.append(
                {
                    "target": f"added p99 ≤ 5 ms at {key.split('-rps')[1]} RPS ({key.split('-')[0]})",
                    "measured": f"{_f(ours['added_p99'])} ms"
                    + _errors_note(gw[key], ("direct", "greenlang")),
                    "met": ours["added_p99"] is not None and ours["added_p99"] <= 5.0,
                }
            )
    return rows


def _cpu_note(value: float | None, *, ratio: bool) -> str:
    """The same comparison by server CPU per request (capacity per core; steadier under noise)."""
    if value is None:
        return ""
    shown = _ratio(value) if ratio else f"{_f(value, 0, 100)}%"
    return f"; by server CPU per request: {shown}"


def _met(value: bool | None, no: str) -> str:
    return "–" if value is None else ("yes" if value else no)


def _errors_note(per_target: dict[str, Any], names: tuple[str, ...] = ()) -> str:
    """Say when a figure rests on failed requests (an error is never a fast answer)."""
    cells = {n: c for n, c in per_target.items() if not names or n in names}
    bad = [
        f"{name} {cell['errors']}/{cell['sent']} failed" for name, cell in cells.items() if cell.get("errors")
    ]
    sample = next((cell.get("error_sample") for cell in cells.values() if cell.get("error_sample")), None)
    if not bad:
        return ""
    return " (" + "; ".join(bad) + (f": {sample}" if sample else "") + ")"


# ---------------------------------------------------------------- tables


CALLERS = {
    "llm_router": "greenlang_llm LLMRouter.generate",
    "provider": "greenlang_llm OpenAIProvider.generate (no router)",
    "litellm_router": "litellm.Router.acompletion",
}


def _library_rows(results: dict[str, Any]) -> list[list[str]]:
    lib = (results.get("library") or {}).get("summary") or {}
    rows = []
    for mode, per in lib.items():
        for name, cell in per.items():
            rows.append(
                [
                    mode,
                    CALLERS.get(name, name),
                    _f(cell.get("added_p50_ms"), 0, 1000),
                    _f(cell.get("added_p99_ms"), 0, 1000),
                    _f(cell.get("added_cpu_us"), 0),
                    _f(cell.get("calls_per_s"), 0),
                    _f(cell.get("raw_calls_per_s"), 0),
                    str(cell.get("errors", "–")),
                ]
            )
    return rows


LIB_HEAD = [
    "mode",
    "caller",
    "added p50 µs",
    "added p99 µs",
    "added CPU µs/call",
    "calls/s",
    "raw calls/s",
    "errors",
]
GW_HEAD = [
    "scenario",
    "server",
    "RPS",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "added p50",
    "added p99",
    "added p99.9",
    "TTFB p50",
    "server CPU µs/req",
    "errors",
]


def _gateway_rows(results: dict[str, Any]) -> list[list[str]]:
    gw = (results.get("gateway") or {}).get("summary") or {}
    rows = []
    for key, per in gw.items():
        for name, cell in per.items():
            rows.append(
                [
                    key,
                    name,
                    _f(cell.get("rps"), 0),
                    _f(cell.get("p50")),
                    _f(cell.get("p99")),
                    _f(cell.get("p999")),
                    _f(cell.get("added_p50")) if name != "direct" else "",
                    _f(cell.get("added_p99")) if name != "direct" else "",
                    _f(cell.get("added_p999")) if name != "direct" else "",
                    _f(cell.get("ttfb_p50")) if "ttfb_p50" in cell else "",
                    _f(cell.get("server_cpu_us_per_req"), 0) if "server_cpu_us_per_req" in cell else "",
                    f"{cell.get('errors', 0)}/{cell.get('sent', 0)}",
                ]
            )
    return rows


def _memory_rows(results: dict[str, Any]) -> list[list[str]]:
    gw = results.get("gateway") or {}
    idle, peak = gw.get("idle_rss_kib") or {}, gw.get("peak_rss_kib") or {}
    return [[name, _f(idle.get(name, 0) / 1024, 1), _f(peak.get(name, 0) / 1024, 1)] for name in idle]


def _ledger_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    ledger = results.get("ledger")
    rows = ledger.get("rows") if isinstance(ledger, dict) else None
    if not rows:
        return None
    head = list(rows[0].keys())
    return head, [[_cell(row.get(h)) for h in head] for row in rows]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return _f(value, 4 if abs(value) < 10 else 0)
    return str(value)


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    return "\n".join(out)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def terminal(results: dict[str, Any]) -> str:
    """Everything a person needs on the terminal after a run."""
    parts = []
    if _library_rows(results):
        parts += [
            "Library: added overhead per call over a raw aiohttp POST (same process)",
            _text_table(LIB_HEAD, _library_rows(results)),
            "",
        ]
    if _gateway_rows(results):
        parts += [
            "Gateway: medians over repeats; 'added' = minus direct-to-simulator in the same repeat (ms)",
            _text_table(GW_HEAD, _gateway_rows(results)),
            "",
            _text_table(["server", "idle RSS MiB", "peak RSS MiB"], _memory_rows(results)),
            "",
        ]
    ledger = _ledger_rows(results)
    if ledger:
        parts += ["Ledger", _text_table(*ledger), ""]
    rows = targets(results)
    if rows:
        parts += [
            "Targets",
            _text_table(
                ["target", "measured", "met"],
                [[r["target"], r["measured"], _met(r["met"], "NO")] for r in rows],
            ),
        ]
    return "\n".join(parts)


def markdown(results: dict[str, Any], chart_name: str | None) -> str:
    """The generated block for docs/benchmarks.md (without the markers)."""
    meta = results.get("meta", {})
    out = [
        f"Generated by `{meta.get('command', 'python -m bench all')}` on {meta.get('finished', '?')} "
        f"(run took {_f(meta.get('elapsed_s'), 0)} s).",
        "",
    ]
    machine = meta.get("machine", {})
    if machine:
        out += ["**Machine and software:**", ""] + [f"- {k}: {v}" for k, v in machine.items()]
    versions = meta.get("versions", {})
    if versions:
        for side, packages in versions.items():
            out.append(f"- {side}: " + ", ".join(f"{k} {v}" for k, v in packages.items()))
    out.append("")
    notes = meta.get("notes") or []
    out += [f"- {n}" for n in notes]
    if notes:
        out.append("")
    rows = targets(results)
    if rows:
        out += [
            "### Targets",
            "",
            _md_table(
                ["target", "measured", "met"],
                [[r["target"], r["measured"], _met(r["met"], "**no**")] for r in rows],
            ),
            "",
        ]
    if _library_rows(results):
        lib = results["library"]
        out += [
            "### Library: router overhead",
            "",
            f"{lib.get('calls_per_measurement')} calls per measurement, concurrency "
            f"{lib.get('concurrency')} for the concurrent mode, median of {lib.get('repeats')} repeats. "
            "'Added' is each caller minus a raw aiohttp POST of the same request to the same simulator, "
            "timed in the same process and repeat; CPU is the client process's CPU time per call. "
            "At concurrency 50 the added latency is mostly queueing behind the caller's own CPU work "
            "(the simulator answers faster than either router can call it), so the CPU per call "
            "and calls/s are the telling figures there. A negative 'added' figure is a difference inside "
            "the run-to-run noise.",
            "",
            _md_table(LIB_HEAD, _library_rows(results)),
            "",
        ]
    if _gateway_rows(results):
        gw = results["gateway"]
        out += [
            "### Gateway: throughput and latency",
            "",
            f"Each run lasts {gw.get('seconds_per_run')} s after a warm-up of every server; median of "
            f"{gw.get('repeats')} repeats with the target order rotated between repeats, and every server "
            "idle before each run. `c10`/`c50`/`c200`: that many connections each sending its next request "
            "when the previous answer is complete; `rps500`: requests started on a fixed schedule (latency "
            "counted from the scheduled start; more than 256 in flight counts as an error instead of a "
            "backlog). 'Added' latencies are the server's percentile minus the direct-to-simulator "
            "percentile of the same repeat (ms). Streaming runs time the first body byte (TTFB) and the "
            "whole stream. Server CPU per request is user+system time of the server's process tree "
            "(/proc) over the run divided by the answered requests; RSS is VmRSS (idle, after start) and "
            "VmHWM (peak). Every server runs one process; the load generator, the simulator and the "
            "server share the machine's cores, so absolute RPS is the machine's, and the ratios are the "
            "result.",
            "",
            _md_table(GW_HEAD, _gateway_rows(results)),
            "",
            _md_table(["server", "idle RSS MiB", "peak RSS MiB"], _memory_rows(results)),
            "",
        ]
        if chart_name:
            out += [f"![latency vs load]({chart_name})", ""]
    ledger = _ledger_rows(results)
    if ledger:
        out += [
            "### Ledger",
            "",
            "From `bench/bench_ledger.py` (its own section above explains each measure), run by this "
            "harness at these sizes. 'By CPU time' divides by the benchmark process's CPU seconds "
            "(rates) or gives them (timings), so it does not depend on other load; for PostgreSQL it "
            "leaves out the server's own CPU.",
            "",
            _md_table(*ledger),
            "",
        ]
    elif results.get("ledger_note"):
        out += ["### Ledger", "", str(results["ledger_note"]), ""]
    for extra in results.get("analysis") or []:
        out.append(extra)
    return "\n".join(out).rstrip() + "\n"


def rewrite_docs(path: Path, block: str) -> None:
    """Replace the marked block in ``path`` (create the file or the section when missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    fresh = f"{BEGIN}\n{block}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + fresh + tail
    else:
        text = text.rstrip() + f"\n\n{SECTION}\n\n{fresh}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------- chart


def _log_scale(lo: float, hi: float, a: float, b: float) -> Any:
    lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or 1.0
    return lambda v: a + (math.log10(max(v, 1e-9)) - lo) / span * (b - a)


def _panel(
    title: str, series: dict[str, list[tuple[float, float, float]]], x0: float, width: float
) -> list[str]:
    """One log-log panel: x = offered concurrency, y = latency ms (solid p50, dashed p99)."""
    top, height = 50.0, 300.0
    xs = [p[0] for pts in series.values() for p in pts]
    ys = [v for pts in series.values() for p in pts for v in p[1:] if v > 0]
    if not xs or not ys:
        return []
    y_lo = 10 ** math.floor(math.log10(min(ys)))
    y_hi = 10 ** math.ceil(math.log10(max(ys)))
    fx = _log_scale(min(xs) / 1.3, max(xs) * 1.3, x0 + 50, x0 + width - 10)
    fy = _log_scale(y_lo, y_hi, top + height, top)
    out = [
        f'<text x="{x0 + width / 2:.0f}" y="30" text-anchor="middle" font-weight="bold">{title}</text>',
        f'<rect x="{x0 + 50}" y="{top}" width="{width - 60}" height="{height}" fill="none" stroke="#ccc"/>',
    ]
    decade = y_lo
    while decade <= y_hi * 1.0001:
        y = fy(decade)
        out.append(f'<line x1="{x0 + 50}" y1="{y:.1f}" x2="{x0 + width - 10}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + 45}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{decade:g}</text>')
        decade *= 10
    for x in sorted(set(xs)):
        out.append(
            f'<text x="{fx(x):.1f}" y="{top + height + 16}" text-anchor="middle" font-size="11">{x:g}</text>'
        )
    out.append(
        f'<text x="{x0 + width / 2 + 20:.0f}" y="{top + height + 34}" text-anchor="middle" '
        'font-size="12">concurrent connections</text>'
    )
    out.append(
        f'<text x="{x0 + 14}" y="{top + height / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 14} {top + height / 2})">latency ms (log)</text>'
    )
    for name, pts in series.items():
        color = COLORS.get(name, "#000")
        for idx, dash in ((1, ""), (2, ' stroke-dasharray="5,4"')):
            path = " ".join(f"{fx(p[0]):.1f},{fy(p[idx]):.1f}" for p in pts if p[idx] > 0)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for p in pts:
            out.append(f'<circle cx="{fx(p[0]):.1f}" cy="{fy(p[1]):.1f}" r="3" fill="{color}"/>')
    return out


def svg_chart(results: dict[str, Any]) -> str | None:
    """Latency vs load for every gateway target, plain and streaming side by side."""
    gw = (results.get("gateway") or {}).get("summary") or {}
    panels: list[str] = []
    width = 430.0
    for i, kind in enumerate(("plain", "stream")):
        series: dict[str, list[tuple[float, float, float]]] = {}
        for key, per in gw.items():
            if not key.startswith(f"{kind}-c"):
                continue
            level = float(key.split("-c")[1])
            for name, cell in per.items():
                if cell.get("p50") is not None and cell.get("p99") is not None:
                    series.setdefault(name, []).append((level, cell["p50"], cell["p99"]))
        for pts in series.values():
            pts.sort()
        title = "plain completions" if kind == "plain" else "streaming (whole stream)"
        panels += _panel(title, series, i * width, width)
    if not panels:
        return None
    total_w = 2 * width
    legend = []
    for j, name in enumerate(n for n in LABELS if any(n in per for per in gw.values())):
        x = 60 + j * 190
        legend.append(
            f'<line x1="{x}" y1="400" x2="{x + 24}" y2="400" stroke="{COLORS[name]}" stroke-width="3"/>'
        )
        legend.append(f'<text x="{x + 30}" y="404" font-size="12">{LABELS[name]}</text>')
    legend.append(
        '<text x="60" y="424" font-size="11" fill="#555">solid: p50, dashed: p99; medians over '
        "repeats; all servers on one 2-core machine with the load generator and simulator</text>"
    )
    body = "\n".join(panels + legend)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="440" '
        f'viewBox="0 0 {total_w:.0f} 440" font-family="sans-serif">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'
    )


def _main(argv: list[str] | None = None) -> int:
    """``python -m bench.report RAW.json [--docs docs/benchmarks.md]``: re-render a saved run."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args(argv)
    results = json.loads(args.raw.read_text())
    print(terminal(results))
    if args.docs is not None:
        chart = svg_chart(results)
        name = "benchmarks-latency-vs-load.svg" if chart else None
        if chart:
            args.docs.parent.mkdir(parents=True, exist_ok=True)
            (args.docs.parent / "benchmarks-latency-vs-load.svg").write_text(chart)
        rewrite_docs(args.docs, markdown(results, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
