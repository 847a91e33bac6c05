"""Scale-out: what sharing state through Redis costs per request, and 1 vs 2 replicas.

    python -m bench.bench_scaleout            # ~4 minutes (3 repeats)
    python -m bench.bench_scaleout --quick    # ~1 minute harness check (1 repeat, shorter runs)

Four setups, each real ``greenlang-llm serve`` processes in front of one simulator process
(zero latency, no faults), all sharing one PostgreSQL ledger (a fresh schema per setup):

- ``local-1`` / ``local-2``: in-process state (each replica its own budgets, limits, breakers);
- ``redis-1`` / ``redis-2``: ``redis_url`` set: budget reservations, per-key RPM/TPM and breaker
  state in Redis (a fresh key prefix per setup).

Every request takes the shared-state path: the tenant has a hard budget (reserve, then
release after the ledger write) and the key has RPM and TPM limits (one bucket take, one
TPM check, one TPM charge). With two replicas the load generator alternates between them
(what an L4 balancer does). Two measurements per setup: sequential requests (concurrency 1:
p50/p99 latency, so "added" is the per-request cost of the shared state, not queueing) and
concurrency 32 (throughput). Redis commands per request come from ``INFO commandstats``.
Setups are rotated between repeats; "added p50" is the median over repeats of
p50(redis-N) - p50(local-N) in the same repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import compare_gateway as cg
from bench import loadgen
from bench.procs import Server, ServerSet, free_port

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = "sk-bench-scaleout"
SETUPS = ("local-1", "redis-1", "local-2", "redis-2")


def gateway_toml(sim: str, port: int, schema: str, redis_prefix: str | None) -> str:
    redis = f'redis_url = "{REDIS_URL}"\nredis_prefix = "{redis_prefix}"\n' if redis_prefix else ""
    return f"""\
[server]
host = "127.0.0.1"
port = {port}
database_url = "{PG_BASE}?schema={schema}"
{redis}
[[providers]]
name = "primary"
type = "openai"
model_id = "gpt-4o-mini"
api_key_env = "BENCH_FAKE_OPENAI_KEY"
base_url = "{sim}/v1"

[[routes]]
name = "bench"
providers = ["primary"]

[[keys]]
key_env = "BENCH_SCALEOUT_KEY"
tenant = "bench"
agent = "loadgen"
rpm = 100000000
tpm = 1000000000

[[budgets]]
tenant = "bench"
monthly_limit_usd = 1000000.0
hard_limit = true
"""


def _redis_calls() -> tuple[int, int]:
    """(script calls, all commands including those run inside scripts) so far, server-wide."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        stats = client.info("commandstats")
        scripts = sum(int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval"))
        return scripts, sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
    finally:
        client.close()


def start_setup(
    servers: ServerSet, name: str, sim: str, workdir: Path
) -> tuple[list[Server], str, str | None]:
    kind, n = name.split("-")
    schema = f"gl_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"glbench:{uuid.uuid4().hex[:8]}:" if kind == "redis" else None
    env = {"BENCH_FAKE_OPENAI_KEY": "sk-test-canary-bench", "BENCH_SCALEOUT_KEY": KEY}
    started = []
    for i in range(int(n)):
        port = free_port()
        config = workdir / f"{name}-{i}.toml"
        config.write_text(gateway_toml(sim, port, schema, prefix))
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(config)]
        started.append(
            servers.start(f"{name}-{i}", argv, base, base + "/health", env=env, ready_timeout_s=60)
        )
    return started, schema, prefix


def cleanup(schema: str, prefix: str | None) -> None:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    if prefix:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


async def run_spread(
    urls: list[str], concurrency: int, max_requests: int, max_seconds: float, warmup: int
) -> loadgen.LoadResult:
    """Closed loop over several replicas, alternating between them (an L4 balancer's round robin)."""
    body = json.dumps({"model": "bench", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()  # fmt: skip
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    targets = itertools.cycle([loadgen.Target(u + "/v1/chat/completions", body, headers) for u in urls])
    result = loadgen.LoadResult(mode="concurrency", level=concurrency)
    async with loadgen._session(concurrency, 30.0) as session:
        scratch = loadgen.LoadResult(mode="warmup", level=concurrency)
        for _ in range(warmup):
            await loadgen._one(session, next(targets), scratch, time.perf_counter())
        budget = [max_requests]
        began = time.perf_counter()
        deadline = began + max_seconds

        async def worker() -> None:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                await loadgen._one(session, next(targets), result, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.duration_s = time.perf_counter() - began
    return result


async def measure(servers: list[Server], quick: bool) -> dict[str, Any]:
    urls = [s.base_url for s in servers]
    seq_n, seconds = (300, 4.0) if quick else (1500, 10.0)
    calls0 = _redis_calls()
    cpu0 = sum(s.cpu_seconds() for s in servers)
    seq = await run_spread(urls, 1, seq_n, seconds, warmup=100)
    calls1 = _redis_calls()
    cpu = sum(s.cpu_seconds() for s in servers) - cpu0
    par = await run_spread(urls, 32, 100_000, seconds, warmup=0)
    s, p = seq.as_dict(), par.as_dict()
    return {
        "p50_ms": s["latency_ms"]["p50"],
        "p99_ms": s["latency_ms"]["p99"],
        "seq_ok": s["ok"],
        "errors": s["errors"] + p["errors"],
        "error_samples": s["error_samples"] + p["error_samples"],
        "redis_scripts_per_req": (calls1[0] - calls0[0]) / seq.ok if seq.ok else None,
        "redis_commands_per_req": (calls1[1] - calls0[1]) / seq.ok if seq.ok else None,
        "server_cpu_us_per_req": cpu / seq.ok * 1e6 if seq.ok else None,
        "rps_c32": p["rps"],
        "p50_c32_ms": p["latency_ms"]["p50"],
    }


async def run(repeats: int, quick: bool) -> dict[str, list[dict[str, Any]]]:
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
    with (
        tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp,
        ServerSet(Path(tmp) / "logs") as servers,
    ):
        sim = cg.start_simulator(servers)
        for rep in range(repeats):
            order = SETUPS[rep % len(SETUPS) :] + SETUPS[: rep % len(SETUPS)]
            for name in order:
                started, schema, prefix = start_setup(servers, name, sim.base_url, Path(tmp))
                try:
                    result = await measure(started, quick)
                finally:
                    for server in started:
                        servers.stop(server)
                    cleanup(schema, prefix)
                raw[name].append(result)
                line = (
                    f"  repeat {rep + 1} {name}: p50 {result['p50_ms']:.2f} ms, "
                    f"p99 {result['p99_ms']:.2f} ms, "
                    f"c32 {result['rps_c32']:.0f} rps, scripts/req {result['redis_scripts_per_req']:.2f}, "
                    f"errors {result['errors']}"
                )
                print(line, file=sys.stderr)
    return raw


def summarize(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def med(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in raw[name]))

    out: dict[str, Any] = {"setups": {}}
    for name in SETUPS:
        keys = ("p50_ms", "p99_ms", "rps_c32", "redis_scripts_per_req", "redis_commands_per_req",
                "server_cpu_us_per_req")  # fmt: skip
        out["setups"][name] = {k: med(name, k) for k in keys}
        out["setups"][name]["errors"] = sum(r["errors"] for r in raw[name])
    for n in ("1", "2"):
        pairs = zip(raw[f"redis-{n}"], raw[f"local-{n}"], strict=True)
        out[f"added_p50_ms_{n}"] = statistics.median(r["p50_ms"] - loc["p50_ms"] for r, loc in pairs)
    return out


def render(summary: dict[str, Any]) -> str:
    lines = [
        "| setup | p50 / p99 sequential (ms) | RPS at concurrency 32 | Redis scripts / commands per request "
        "| server CPU / request |",
        "|---|---|---|---|---|",
    ]
    for name, s in summary["setups"].items():
        lines.append(
            f"| {name} | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} | {s['rps_c32']:.0f} | "
            f"{s['redis_scripts_per_req']:.1f} / {s['redis_commands_per_req']:.0f} | "
            f"{s['server_cpu_us_per_req']:.0f} µs |"
        )
    lines.append("")
    lines.append(f"Added p50 of the Redis state: {summary['added_p50_ms_1']:.2f} ms with 1 replica, "
                 f"{summary['added_p50_ms_2']:.2f} ms with 2 (target <= 1 ms).")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, short runs (harness check)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write raw results and summary here")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    raw = asyncio.run(run(repeats, args.quick))
    summary = summarize(raw)
    print(render(summary))
    if args.json:
        args.json.write_text(json.dumps({"raw": raw, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
