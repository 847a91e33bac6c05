"""Where ``greenlang-llm serve`` spends its CPU under the benchmark's load: py-spy, summarized.

Starts the simulator and the gateway exactly as ``python -m bench gateway`` does, drives one
scenario with the same load generator, samples the gateway with py-spy (only while a thread
holds the GIL, so waiting is not counted) and prints the share of samples by file and by
line. py-spy is a profiling tool, not a dependency: ``pip install py-spy`` first.

    python -m bench.profile_gateway --scenario plain-c50 --seconds 10
    python -m bench.profile_gateway --scenario stream-rps500
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import compare_gateway, loadgen
from .procs import ServerSet

_TRIM = [
    (re.compile(r".*/site-packages/"), ""),
    (re.compile(r".*/src/"), ""),
    (re.compile(r".*/lib/python3\.\d+/"), "stdlib/"),
]


def _short(path: str) -> str:
    for pattern, repl in _TRIM:
        path = pattern.sub(repl, path)
    return path


def summarize(raw: Path, top: int) -> str:
    """Self time by file and by line, as shares of all GIL-holding samples."""
    by_file: collections.Counter[str] = collections.Counter()
    by_line: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf = stack.split(";")[-1]
        match = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", leaf)
        if match is None:
            continue
        func, path, lineno = match.group(1), _short(match.group(2)), match.group(3) or "?"
        by_file[path] += n
        by_line[f"{path}:{lineno} {func}"] += n
    if not total:
        return "no samples"
    out = [f"{total} samples while holding the GIL", "", "self time by file:"]
    out += [f"  {100 * n / total:5.1f}%  {k}" for k, n in by_file.most_common(top)]
    out += ["", "self time by line:"]
    out += [f"  {100 * n / total:5.1f}%  {k}" for k, n in by_line.most_common(top)]
    return "\n".join(out)


async def _drive(ep: compare_gateway.Endpoint, scenario: str, seconds: float) -> dict[str, object]:
    kind, _, level = scenario.partition("-")
    stream = kind == "stream"
    target = loadgen.Target(ep.url, compare_gateway._body(ep.model, stream), ep.headers, stream)
    await loadgen.run_concurrency(target, 20, max_requests=1500, max_seconds=3)  # warm-up
    if level.startswith("rps"):
        result = await loadgen.run_rate(target, int(level[3:]), 10**6, seconds)
    else:
        result = await loadgen.run_concurrency(target, int(level[1:]), 10**6, seconds)
    return result.as_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--scenario", default="plain-c50", help="plain|stream - c<N>|rps<N> (default plain-c50)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw collapsed stacks here")
    parser.add_argument("--summarize", type=Path, default=None, help="only summarize this py-spy raw file")
    args = parser.parse_args(argv)
    if args.summarize is not None:  # e.g. a library profile: py-spy record --gil --format raw -- python …
        print(summarize(args.summarize, args.top))
        return 0
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="greenlang-profile-") as tmp:
        work = Path(tmp)
        raw = args.raw or work / "profile.raw"
        with ServerSet(work / "logs") as servers:
            sim = compare_gateway.start_simulator(servers)
            endpoints = compare_gateway.start_targets(servers, sim.base_url, sim, work, None, lambda _m: None)
            ours = next(ep for ep in endpoints if ep.name == "greenlang")
            assert ours.server is not None
            record = [
                spy,
                "record",
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds)),
                "--output",
                str(raw),
                "--pid",
                str(ours.server.proc.pid),
            ]
            spy_proc = None

            async def run() -> dict[str, object]:
                nonlocal spy_proc
                target_task = asyncio.create_task(_drive(ours, args.scenario, args.seconds + 4))
                await asyncio.sleep(4)  # past the warm-up
                spy_proc = subprocess.Popen(  # noqa: ASYNC220 - starts at once, never waited on here
                    record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                return await target_task

            load = asyncio.run(run())
            if spy_proc is not None:
                spy_proc.wait(timeout=60)
        lat: dict[str, float] = load["latency_ms"]  # type: ignore[assignment]
        print(
            f"scenario {args.scenario}: {load['rps']:.0f} RPS, p50 {lat['p50']:.2f} ms, "
            f"p99 {lat['p99']:.2f} ms, errors {load['errors']}"
        )
        print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
