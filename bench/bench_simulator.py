"""How many requests per second the simulator serves on one core, with zero latency.

Why: the simulator stands in for the providers in the gateway benchmark, so it
must never be the bottleneck there (target >= 3,000 plain requests/s).

    python bench/bench_simulator.py                     # plain OpenAI + Anthropic, 20 s each max
    python bench/bench_simulator.py --stream --requests 20000

The simulator runs as ``greenlang-llm simulate --port 0`` (uvloop + httptools),
pinned to CPU 0; the load generator (aiohttp, closed loop with ``--concurrency``
keep-alive connections, uvloop) runs in another process pinned to CPU 1. Both
on 127.0.0.1 only. Each run is bounded by ``--requests`` and ``--duration``,
after ``--warmup`` unmeasured requests. The server's own ``/_sim/stats`` is
read back to check that every request was answered 200, and its CPU time
(/proc) gives ``req/CPU-s``: requests per second of server CPU, the capacity of
one fully busy core even when other processes share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Any

KEY = "sk-test-canary"
BODIES: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "openai": (
        "/v1/chat/completions",
        {"authorization": f"Bearer {KEY}", "content-type": "application/json"},
        {"model": "gpt-4.1-mini", "max_completion_tokens": 16,
         "messages": [{"role": "user", "content": "What does a circuit breaker do in an LLM gateway?"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        {"model": "claude-sonnet-4-6", "max_tokens": 16,
         "messages": [{"role": "user", "content": "What does a circuit breaker do in an LLM gateway?"}]},
    ),
}


def _pin(cpu: int) -> None:
    if os.environ.get("BENCH_NO_PIN"):
        return
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# ---------------------------------------------------------------- load generator (child process)


async def _load(url: str, api: str, stream: bool, requests: int, duration: float, concurrency: int,
                warmup: int) -> dict[str, Any]:
    import aiohttp

    path, headers, body = BODIES[api]
    payload = json.dumps({**body, "stream": True} if stream else body).encode()
    target = url + path
    latencies: list[float] = []
    errors = 0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            async with http.post(target, data=payload, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - start)

        async def worker(share: int, deadline: float) -> None:
            for _ in range(share):
                if time.perf_counter() > deadline:
                    return
                await one()

        async def phase(total: int, limit: float) -> float:
            deadline = time.perf_counter() + limit
            base, extra = divmod(total, concurrency)
            shares = [base + (1 if i < extra else 0) for i in range(concurrency)]
            began = time.perf_counter()
            await asyncio.gather(*(worker(s, deadline) for s in shares))
            return time.perf_counter() - began

        await phase(warmup, duration)
        latencies.clear()
        errors = 0
        elapsed = await phase(requests, duration)
    latencies.sort()
    done = len(latencies)
    return {
        "api": api, "stream": stream, "requests": done, "errors": errors, "seconds": round(elapsed, 3),
        "rps": round(done / elapsed, 1),
        "p50_ms": round(latencies[done // 2] * 1000, 2) if done else None,
        "p99_ms": round(latencies[min(done - 1, int(done * 0.99))] * 1000, 2) if done else None,
    }


def _loadgen_main(args: argparse.Namespace) -> int:
    _pin(1)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_load(args.loadgen, args.api[0], args.stream, args.requests, args.duration,
                               args.concurrency, args.warmup))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------- driver


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to express capacity per busy core."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api", nargs="+", choices=sorted(BODIES), default=["openai", "anthropic"])
    parser.add_argument("--stream", action="store_true", help="stream the replies (16 tokens each)")
    parser.add_argument("--requests", type=int, default=30_000, help="measured requests per API (bound)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per API at most (bound)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to CPUs")
    parser.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_pin:
        os.environ["BENCH_NO_PIN"] = "1"  # inherited by both children
    if args.loadgen:
        return _loadgen_main(args)

    server = subprocess.Popen(
        [sys.executable, "-m", "greenlang_llm", "simulate", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, text=True, preexec_fn=lambda: _pin(0),
    )
    results = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"simulator did not start: {url!r}")
        for api in args.api:
            before = _stats(url)["by_status"].get("200", 0)
            cpu_before = _cpu_seconds(server.pid)
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            child = subprocess.run(
                [sys.executable, __file__, "--loadgen", url, "--api", api, "--requests", str(args.requests),
                 "--duration", str(args.duration), "--concurrency", str(args.concurrency),
                 "--warmup", str(args.warmup), *(["--stream"] if args.stream else [])],
                capture_output=True, text=True, timeout=args.duration * 2 + 120, check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            done = resource.getrusage(resource.RUSAGE_CHILDREN)
            result["loadgen_cpu_s"] = round(
                done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime, 2
            )
            result["server_200s"] = _stats(url)["by_status"].get("200", 0) - before
            cpu_after = _cpu_seconds(server.pid)
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                # includes the warm-up: requests per second of server CPU, i.e. on one fully busy core
                result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
                result["rps_per_cpu"] = round(result["server_200s"] / (cpu_after - cpu_before), 1)
            results.append(result)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'api':10} {'mode':7} {'requests':>9} {'errors':>6} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'server CPU s':>12} {'req/CPU-s':>10} {'loadgen CPU s':>13}")
        for r in results:
            mode = "stream" if r["stream"] else "plain"
            print(f"{r['api']:10} {mode:7} {r['requests']:>9} {r['errors']:>6} {r['rps']:>9,.0f} "
                  f"{r['p50_ms']:>7} {r['p99_ms']:>7} {r.get('server_cpu_s', float('nan')):>12} "
                  f"{r.get('rps_per_cpu', float('nan')):>10,.0f} {r['loadgen_cpu_s']:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
