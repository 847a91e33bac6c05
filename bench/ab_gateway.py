"""Two builds of ``greenlang-llm serve`` on one simulator, alternating runs: did a change help?

    python -m bench.ab_gateway --a-rev c9f5c06                        # that revision vs the work tree
    python -m bench.ab_gateway --a-rev HEAD --scenario stream-c10 --scenario plain-rps500
    python -m bench.ab_gateway --a-env GREENLANG_X=1 --b-env GREENLANG_X=0   # same code, other env

A full ``python -m bench gateway`` run compares against peers; this answers the narrower
question a profile raises ("is the new code cheaper?") with less noise: both gateways run
at once from the same config, on the same simulator, and every repeat runs A and B back
to back in alternating order, so a slow drift of the machine hits both. ``--a-rev`` builds
A from ``git archive REV src`` in a temporary directory (put first on ``PYTHONPATH``); B is
the working tree unless ``--b-rev`` says otherwise. Prints the median RPS, server CPU per
request and p99 of each side, and each repeat's CPU so the spread shows. Loopback only;
every process started is stopped at the end (``procs.ServerSet``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import compare_gateway, loadgen
from .procs import Server, ServerSet

ROOT = Path(__file__).resolve().parent.parent


def _export(rev: str, into: Path) -> str:
    """``src/`` of ``rev`` under ``into``; returns the directory to put on ``PYTHONPATH``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into / "src")


def _start(
    servers: ServerSet,
    sim: Server,
    work: Path,
    env: dict[str, str],
    config_text: Callable[[str, int, Path], str] = compare_gateway.gateway_config,
) -> tuple[Server, str]:
    """A ``greenlang-llm serve`` on a free port over ``sim``, configured by ``config_text``."""
    port = compare_gateway.free_port()
    base = f"http://127.0.0.1:{port}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "greenlang-llm.toml"
    config.write_text(config_text(sim.base_url, port, work / "ledger.db"))
    full_env = {
        compare_gateway.GATEWAY_KEY_ENV: compare_gateway.GATEWAY_KEY,
        "BENCH_FAKE_OPENAI_KEY": "sk-bench-fake-openai",
        "BENCH_FAKE_ANTHROPIC_KEY": "sk-ant-bench-fake",
        "GREENLANG_LLM_LOOPBACK_ONLY": "1",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    argv = [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(config), "--port", str(port)]
    return servers.start(work.name, argv, base, base + "/health", env=full_env, cwd=work), base


async def _run(server: Server, base: str, scenario: str, seconds: float) -> tuple[float, float, float]:
    kind, _, level = scenario.partition("-")
    stream = kind == "stream"
    headers = {"content-type": "application/json", "authorization": f"Bearer {compare_gateway.GATEWAY_KEY}"}
    target = loadgen.Target(
        base + "/v1/chat/completions", compare_gateway._body(compare_gateway.ROUTE, stream), headers, stream
    )
    cpu0 = server.cpu_seconds()
    if level.startswith("rps"):
        result = await loadgen.run_rate(target, int(level[3:]), 10**6, seconds)
    else:
        result = await loadgen.run_concurrency(target, int(level[1:]), 10**6, seconds)
    data: dict[str, Any] = result.as_dict()
    cpu_us = (server.cpu_seconds() - cpu0) / max(1, result.ok) * 1e6
    return float(data["rps"]), cpu_us, float(data["latency_ms"]["p99"])


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--a-env/--b-env take NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--a-rev", help="build A from this git revision (default: the work tree)")
    parser.add_argument("--b-rev", help="build B from this git revision (default: the work tree)")
    parser.add_argument("--a-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--scenario",
        action="append",
        default=None,
        help="plain|stream - c<N>|rps<N> (repeatable; "
        "default plain-c10, stream-c10, plain-rps500, stream-rps500)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    scenarios = args.scenario or ["plain-c10", "stream-c10", "plain-rps500", "stream-rps500"]
    with tempfile.TemporaryDirectory(prefix="greenlang-ab-") as tmp, ServerSet(Path(tmp) / "logs") as servers:
        work = Path(tmp)
        sim = compare_gateway.start_simulator(servers)
        sides: dict[str, tuple[Server, str]] = {}
        for name, rev, env in (("A", args.a_rev, args.a_env), ("B", args.b_rev, args.b_env)):
            side_env = _env(env)
            if rev:
                side_env["PYTHONPATH"] = _export(rev, work / f"src-{name}")
            sides[name] = _start(servers, sim, work / f"gateway-{name}", side_env)

        async def measure() -> dict[str, dict[str, list[tuple[float, float, float]]]]:
            results: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
            for scenario in scenarios:
                per = results.setdefault(scenario, {"A": [], "B": []})
                for name in "AB":  # warm both
                    await _run(*sides[name], scenario, 1.0)
                for i in range(args.repeats):
                    for name in "AB" if i % 2 == 0 else "BA":
                        await asyncio.sleep(0.5)
                        per[name].append(await _run(*sides[name], scenario, args.seconds))
            return results

        results = asyncio.run(measure())
    a_label = args.a_rev or "work tree"
    b_label = args.b_rev or "work tree"
    print(f"A = {a_label} {args.a_env or ''}  B = {b_label} {args.b_env or ''}")
    for scenario, per in results.items():
        for name in "AB":
            runs = per[name]
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            spread = ", ".join(f"{r[1]:.0f}" for r in runs)
            print(
                f"{scenario:14} {name}: {rps:8,.0f} RPS  {cpu:6,.0f} µs CPU/req  p99 {p99:6.2f} ms  "
                f"(CPU per repeat: {spread})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
