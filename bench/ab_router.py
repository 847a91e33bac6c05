"""Two builds of ``LLMRouter`` on the same workload, alternating runs: did a change cost router overhead?

    python -m bench.ab_router --a-rev 551af3f                        # that revision vs the work tree
    python -m bench.ab_router --a-rev HEAD --strategy least_cost --repeats 9

``bench/bench_router.py`` measures one build's overhead against the bare provider in the same
process (direct and routed calls alternate, so both see the same caches). This runs it for two
builds in alternating processes — A, B, B, A, ... — so a slow drift of the machine hits both,
and prints the median over repeats of each side's added p50 and p99 (routed minus direct, per
pair of calls), with every repeat's figure so the spread shows. ``--a-rev`` builds A from
``git archive REV src`` (put first on ``PYTHONPATH``); B is the working tree unless ``--b-rev``
says otherwise. No network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .ab_gateway import _export

ROOT = Path(__file__).resolve().parent.parent


def _once(pythonpath: str | None, args: argparse.Namespace) -> tuple[float, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = [sys.executable, str(ROOT / "bench" / "bench_router.py"), "--n", str(args.n), "--strategy",
            args.strategy, "--providers", str(args.providers), "--json"]
    if args.uvloop:
        argv.append("--uvloop")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    (row,) = json.loads(out)
    return float(row["added_us"]["median"]), float(row["added_us"]["p99"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab_router", description=__doc__.splitlines()[0])
    parser.add_argument("--a-rev", help="build A from this git revision (default: the work tree)")
    parser.add_argument("--b-rev", help="build B from this git revision (default: the work tree)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=20_000, help="routed/direct call pairs per run")
    parser.add_argument("--strategy", default="priority")
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.n < 1:
        raise SystemExit("--repeats and --n must be at least 1")
    with tempfile.TemporaryDirectory(prefix="greenlang-ab-router-") as tmp:
        paths = {
            name: _export(rev, Path(tmp) / f"src-{name}") if rev else None
            for name, rev in (("A", args.a_rev), ("B", args.b_rev))
        }
        runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for i in range(args.repeats):
            for name in "AB" if i % 2 == 0 else "BA":
                runs[name].append(_once(paths[name], args))
    print(f"A = {args.a_rev or 'work tree'}  B = {args.b_rev or 'work tree'}  "
          f"({args.strategy}, {args.providers} providers, {args.n:,} pairs x {args.repeats} repeats)")
    for name in "AB":
        p50 = statistics.median(r[0] for r in runs[name])
        p99 = statistics.median(r[1] for r in runs[name])
        spread = ", ".join(f"{r[0]:.2f}" for r in runs[name])
        print(f"{name}: added p50 {p50:6.2f} µs  added p99 {p99:7.2f} µs  (p50 per repeat: {spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
