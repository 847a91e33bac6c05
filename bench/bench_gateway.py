"""Gateway overhead in one command: ``greenlang-llm serve`` vs a bare forwarder vs the simulator.

    python -m bench.bench_gateway            # ~2 minutes; add --quick for a ~20 s harness check
    python -m bench.bench_gateway --docs docs/benchmarks.md   # also rewrite its "## Gateway" section

Three targets in front of one simulator process (zero latency, no faults), all on
127.0.0.1 and all started and stopped by this script (process groups, stopped on
any exit):

- ``direct``: the simulator itself — the floor "added latency" is measured from;
- ``bare``: ``bench/bare_forwarder.py`` (Starlette + aiohttp relaying bytes, no features);
- ``greenlang``: the real gateway from a TOML config — virtual key, a two-provider
  route (failover, breakers), budget reservation, SQLite ledger commit per request.

Scenarios: plain requests at fixed concurrency 50 (throughput: target >= 60% of the
bare forwarder's RPS), plain requests at a fixed 500 RPS open loop (added p99 target
<= 5 ms), streams at fixed concurrency 10 (added time to first byte target <= 2 ms).
Targets are rotated between repeats; each figure is the median over repeats of the
per-repeat difference or ratio against the same repeat's ``direct`` / ``bare`` run.
Bounded: every run stops at a request count and a wall-clock limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import compare_gateway as cg
from bench.procs import ServerSet

BUDGET_BLOCK = """
[[budgets]]
tenant = "bench"
monthly_limit_usd = 1000000.0
hard_limit = true
"""


def _with(original: Any, budget: bool, durable: bool) -> Any:
    """The shared gateway config plus a hard budget (every request takes the reservation path)
    and/or ``durable_replies`` (no reply before its ledger record is durable)."""

    def config(sim: str, port: int, db_path: Path) -> str:
        text = str(original(sim, port, db_path)) + (BUDGET_BLOCK if budget else "")
        flag = "true" if durable else "false"
        return text.replace("[server]\n", f"[server]\ndurable_replies = {flag}\n", 1)

    return config


SCENARIOS = (
    cg.Scenario("plain", "concurrency", 50),
    cg.Scenario("plain", "rate", 500),
    cg.Scenario("stream", "rate", 100),
)


async def measure(endpoints: list[cg.Endpoint], repeats: int, seconds: float, log: Any) -> dict[str, Any]:
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.key: {e.name: [] for e in endpoints} for sc in SCENARIOS
    }
    for ep in endpoints:  # warm pools, caches and lazy imports; not recorded
        for stream in (False, True):
            warm = cg.loadgen.Target(ep.url, cg._body(ep.model, stream), ep.headers, stream)
            await cg.loadgen.run_concurrency(warm, 20, max_requests=1000, max_seconds=seconds)
    for rep in range(repeats):
        order = endpoints[rep % len(endpoints) :] + endpoints[: rep % len(endpoints)]
        for sc in SCENARIOS:
            for ep in order:
                await cg._settle(endpoints)
                res = await cg._run_one(ep, sc, seconds, seconds)
                raw[sc.key][ep.name].append(res)
                lat = res["latency_ms"]
                ttfb = res.get("ttfb_ms") or {}
                log(
                    f"r{rep + 1} {sc.key:<14} {ep.name:<10} rps={res['rps']:7.0f} p50={lat['p50']:6.2f} "
                    f"p99={lat['p99']:6.2f} ttfb50={ttfb.get('p50', float('nan')):6.2f} ms "
                    f"errors={res['errors']} "
                    f"cpu/req={res.get('server_cpu_us_per_req') or float('nan'):5.0f} us"
                )
    return {"raw": raw, "summary": cg.summarize_matrix(raw, repeats)}


def markdown(summary: dict[str, Any], repeats: int, seconds: float, command: str, budget: bool = True) -> str:
    plain_c = summary["plain-c50"]
    rate = summary["plain-rps500"]
    stream = summary["stream-rps100"]
    g = "greenlang"

    def f(value: Any, fmt: str = ".2f") -> str:
        return "–" if value is None else format(value, fmt)

    ratio = plain_c[g].get("rps_vs_bare")
    added_p99 = rate[g].get("added_p99")
    added_ttfb = stream[g].get("added_ttfb_p50")
    lines = [
        "## Gateway",
        "",
        "`greenlang-llm serve` (virtual key, two-provider priority route with breakers,",
        (
            "a hard budget, so every request reserves its worst case (token count per provider) and"
            if budget
            else "no budget (so no reservation work),"
        ),
        "releases it after its record is durable in the SQLite ledger) against a bare Starlette +",
        "aiohttp forwarder and the simulator called directly, all on 127.0.0.1, on the same 2 vCPUs",
        "as the load generator and the simulator (figures vary run to run).",
        f'Median over {repeats} repeats of {seconds:g} s per run, targets rotated; "added" is against',
        "`direct` in the same repeat.",
        "",
        f"    {command}",
        "",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())}:",
        "",
        "| scenario | target | RPS | p50 ms | p99 ms | added p50 | added p99 | TTFB p50 | added TTFB p50"
        " | server CPU µs/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("plain-c50", "plain, concurrency 50"),
        ("plain-rps500", "plain, 500 RPS open loop"),
        ("stream-rps100", "stream, 100 RPS open loop"),
    ):
        for name in ("direct", "bare", g):
            row = summary[key].get(name, {})
            lines.append(
                f"| {label} | {name} | {f(row.get('rps'), '.0f')} | {f(row.get('p50'))} | "
                f"{f(row.get('p99'))} | "
                f"{f(row.get('added_p50'))} | {f(row.get('added_p99'))} | {f(row.get('ttfb_p50'))} | "
                f"{f(row.get('added_ttfb_p50'))} | {f(row.get('server_cpu_us_per_req'), '.0f')} |"
            )

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**missed**")

    lines += [
        "",
        "Targets:",
        "",
        "- throughput >= 60% of the bare forwarder (plain, concurrency 50): "
        f"{f(ratio and ratio * 100, '.0f')}% "
        f"— {verdict(None if ratio is None else ratio >= 0.6)};",
        f"- added p99 <= 5 ms at 500 RPS: {f(added_p99)} ms "
        f"— {verdict(None if added_p99 is None else added_p99 <= 5)};",
        f"- added streaming TTFB <= 2 ms (p50, 100 streams/s): {f(added_ttfb)} ms "
        f"— {verdict(None if added_ttfb is None else added_ttfb <= 2)}.",
        "",
        "Reading the numbers: the load generator, the simulator and the servers share two vCPUs,",
        "so throughput at concurrency 50 is CPU-bound and \"server CPU µs/req\" is the steadier",
        "figure; tails move between runs with whatever else the machine does. The gateway's",
        "extra CPU over the bare forwarder is its work per request: authentication, parsing,",
        "the hard budget's reservation (≈ 50 µs per request here, against the same gateway",
        "without a budget in the side-by-side run), routing with breakers and failover, pricing,",
        "rendering, and the durable ledger commit (on the event loop for the default SQLite",
        "ledger; see the hand-written analysis under \"Side by side with LiteLLM\").",
        "Start-up loads the price catalog and tokenizers and calls `gc.freeze()`, so neither a",
        "catalog load (~0.2 s) nor a full collection over it (~20 ms) lands on a request.",
        "",
    ]
    return "\n".join(lines)


def rewrite_section(path: Path, section: str) -> None:
    """Replace the ``## Gateway`` section (up to the next ``## ``) or append it; the rest is untouched."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(r"^## Gateway\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 s runs: checks the harness")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--seconds", type=float, default=None, help="per run (default 3; quick: 1)")
    parser.add_argument(
        "--docs", type=Path, default=None, help="rewrite the '## Gateway' section of this file"
    )
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--durable", action="store_true", help="gateway with durable_replies = true")
    parser.add_argument(
        "--no-budget",
        action="store_true",
        help="bench tenant without a hard budget (no reservation work per request)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    command = "python -m bench.bench_gateway" + "".join(f" {a}" for a in (argv or sys.argv[1:]) if a)

    def log(message: str) -> None:
        print(f"[bench-gateway] {message}", file=sys.stderr, flush=True)

    cg.gateway_config = _with(cg.gateway_config, not args.no_budget, args.durable)  # type: ignore[assignment]
    workdir = Path(tempfile.mkdtemp(prefix="greenlang-bench-gateway-"))
    with ServerSet(workdir / "logs") as servers:
        sim = cg.start_simulator(servers)
        endpoints = cg.start_targets(servers, sim.base_url, sim, workdir, None, log)
        log("targets: " + ", ".join(f"{e.name}={e.url}" for e in endpoints))
        try:
            import uvloop

            result = uvloop.run(measure(endpoints, repeats, seconds, log))
        except ImportError:
            result = asyncio.run(measure(endpoints, repeats, seconds, log))
    log("all servers stopped")
    section = markdown(
        result["summary"],
        repeats,
        seconds,
        command.replace(" --docs docs/benchmarks.md", ""),
        budget=not args.no_budget,
    )
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    if args.docs:
        rewrite_section(args.docs, section)
        log(f"rewrote the Gateway section of {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
