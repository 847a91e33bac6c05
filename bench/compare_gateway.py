"""Gateway comparison: the same load generator against four servers, in the same run.

Targets, all in front of one simulator process on 127.0.0.1:

- ``direct``: the simulator itself — the floor every "added latency" is measured from;
- ``bare``: ``bench/bare_forwarder.py`` — Starlette + aiohttp relaying bytes, no features;
- ``greenlang``: ``greenlang-llm serve`` with a two-provider route (failover, breakers,
  virtual key, cost ledger on SQLite);
- ``litellm``: LiteLLM's proxy (peer venv) with the same two deployments and fallbacks.

Each scenario (plain or streaming; fixed concurrency 10/50/200, fixed rate 500 RPS) runs
against every target in turn, the target order rotating between repeats, so a slow
moment on the shared machine lands on every target alike. Each figure is taken per
repeat as a ratio or difference against ``direct`` from the same repeat, and the median
over repeats is reported. Server CPU per request comes from /proc, RSS from VmRSS/VmHWM.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import loadgen
from .procs import Server, ServerSet, free_port

BENCH_DIR = Path(__file__).resolve().parent
GATEWAY_KEY_ENV = "BENCH_GATEWAY_KEY"
GATEWAY_KEY = "sk-bench-tenant"
ROUTE = "bench"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
TARGETS = ("direct", "bare", "greenlang", "litellm")


@dataclass(frozen=True)
class Scenario:
    kind: str  # "plain" | "stream"
    mode: str  # "concurrency" | "rate"
    level: int

    @property
    def key(self) -> str:
        unit = "c" if self.mode == "concurrency" else "rps"
        return f"{self.kind}-{unit}{self.level}"


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("plain", "concurrency", 10),
            Scenario("plain", "rate", 100),
            Scenario("stream", "concurrency", 10),
        ]
    levels = (10, 50, 200)
    out = [Scenario("plain", "concurrency", c) for c in levels] + [Scenario("plain", "rate", 500)]
    out += [Scenario("stream", "concurrency", c) for c in levels] + [Scenario("stream", "rate", 500)]
    return out


@dataclass
class Endpoint:
    name: str
    url: str  # full /v1/chat/completions URL
    headers: dict[str, str]
    server: Server | None  # None: measured elsewhere (the simulator is "direct")
    model: str


def _body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def gateway_config(sim: str, port: int, db_path: Path) -> str:
    """A ``greenlang-llm serve`` config equivalent to the LiteLLM proxy's (see litellm_proxy.py)."""
    return f"""\
[server]
host = "127.0.0.1"
port = {port}
database_url = "sqlite:///{db_path}"

[[providers]]
name = "primary"
type = "openai"
model_id = "{OPENAI_MODEL}"
api_key_env = "BENCH_FAKE_OPENAI_KEY"
base_url = "{sim}/v1"
priority = 1

[[providers]]
name = "fallback"
type = "anthropic"
model_id = "{ANTHROPIC_MODEL}"
api_key_env = "BENCH_FAKE_ANTHROPIC_KEY"
base_url = "{sim}"
priority = 2

[[routes]]
name = "{ROUTE}"
strategy = "priority"
providers = ["primary", "fallback"]

[[keys]]
key_env = "{GATEWAY_KEY_ENV}"
tenant = "bench"
agent = "loadgen"
"""


def start_simulator(servers: ServerSet) -> Server:
    """The simulator with its defaults: no added latency, no faults (pure server overhead)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "greenlang_llm", "simulate", "--host", "127.0.0.1", "--port", str(port)]
    return servers.start("simulator", argv, base, base + "/v1/models", ready_timeout_s=30)


def start_targets(
    servers: ServerSet,
    sim: str,
    sim_server: Server | None,
    workdir: Path,
    peer_python: Path | None,
    log: Callable[[str], None],
) -> list[Endpoint]:
    """Start bare forwarder, our gateway and (when the peer venv exists) LiteLLM's proxy.

    The ``direct`` endpoint carries the simulator's process, so its CPU and RSS are
    reported too and every run can wait for it to go idle.
    """
    path = "/v1/chat/completions"
    json_ct = {"content-type": "application/json"}
    endpoints = [
        Endpoint(
            "direct",
            sim + path,
            {**json_ct, "authorization": "Bearer sk-bench-fake-openai"},
            sim_server,
            OPENAI_MODEL,
        )
    ]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, str(BENCH_DIR / "bare_forwarder.py"), "--upstream", sim, "--port", str(port)]
    bare = servers.start("bare", argv, base, base + "/health")
    endpoints.append(
        Endpoint(
            "bare",
            base + path,
            {**json_ct, "authorization": "Bearer sk-bench-fake-openai"},
            bare,
            OPENAI_MODEL,
        )
    )

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = workdir / "greenlang-llm.toml"
    config.write_text(gateway_config(sim, port, workdir / "bench-ledger.db"))
    env = {
        GATEWAY_KEY_ENV: GATEWAY_KEY,
        "BENCH_FAKE_OPENAI_KEY": "sk-bench-fake-openai",
        "BENCH_FAKE_ANTHROPIC_KEY": "sk-ant-bench-fake",
        "GREENLANG_LLM_LOOPBACK_ONLY": "1",
        "LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(config), "--port", str(port)]
    ours = servers.start("greenlang", argv, base, base + "/health", env=env, cwd=workdir)
    endpoints.append(
        Endpoint("greenlang", base + path, {**json_ct, "authorization": f"Bearer {GATEWAY_KEY}"}, ours, ROUTE)
    )

    if peer_python is None:
        log("LiteLLM proxy skipped: no peer venv")
        return endpoints
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        str(peer_python),
        str(BENCH_DIR / "litellm_proxy.py"),
        "--sim",
        sim,
        "--port",
        str(port),
        "--dir",
        str(workdir / "litellm"),
    ]
    litellm = servers.start("litellm", argv, base, base + "/health/liveliness", ready_timeout_s=90)
    endpoints.append(
        Endpoint(
            "litellm", base + path, {**json_ct, "authorization": "Bearer sk-bench-master"}, litellm, ROUTE
        )
    )
    return endpoints


async def _settle(endpoints: list[Endpoint], max_s: float = 20.0) -> None:
    """Wait until every server is idle (a backlog from an overloaded run must not spill into the next)."""
    procs = [ep.server for ep in endpoints if ep.server is not None]
    deadline = time.monotonic() + max_s
    before = [p.cpu_seconds() for p in procs]
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        after = [p.cpu_seconds() for p in procs]
        busy = any(a - b > 0.04 for a, b in zip(after, before, strict=True))  # > 20% of a core
        if not busy:
            return
        before = after


async def _run_one(ep: Endpoint, sc: Scenario, seconds: float, rate_seconds: float) -> dict[str, Any]:
    target = loadgen.Target(ep.url, _body(ep.model, sc.kind == "stream"), ep.headers, sc.kind == "stream")
    cpu0 = ep.server.cpu_seconds() if ep.server else 0.0
    if sc.mode == "concurrency":
        result = await loadgen.run_concurrency(target, sc.level, max_requests=50_000, max_seconds=seconds)
    else:
        result = await loadgen.run_rate(target, sc.level, max_requests=50_000, max_seconds=rate_seconds)
    out = result.as_dict()
    if ep.server is not None:
        cpu = ep.server.cpu_seconds() - cpu0
        out["server_cpu_us_per_req"] = cpu / result.ok * 1e6 if result.ok else None
        out["rss_kib"] = ep.server.rss_kib()
    return out


async def run_matrix(
    endpoints: list[Endpoint],
    quick: bool,
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every scenario × every target × ``repeats``; raw per-repeat results plus medians and ratios."""
    seconds = 0.6 if quick else 1.5
    rate_seconds = 0.6 if quick else 1.5
    scs = scenarios(quick)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.key: {ep.name: [] for ep in endpoints} for sc in scs
    }
    idle_rss = {ep.name: ep.server.rss_kib() for ep in endpoints if ep.server}
    # Warm every server (pools, caches, lazy imports; LiteLLM needs a few hundred requests before it
    # reaches its steady speed): bounded by count and time, not recorded.
    warm_n, warm_s = (300, 2.0) if quick else (1500, 8.0)
    for ep in endpoints:
        for stream in (False, True):
            warm = loadgen.Target(ep.url, _body(ep.model, stream), ep.headers, stream)
            await loadgen.run_concurrency(warm, 20, max_requests=warm_n, max_seconds=warm_s / 2)
    began = time.monotonic()
    for rep in range(repeats):
        order = endpoints[rep % len(endpoints) :] + endpoints[: rep % len(endpoints)]
        for sc in scs:
            for ep in order:
                await _settle(endpoints)
                res = await _run_one(ep, sc, seconds, rate_seconds)
                raw[sc.key][ep.name].append(res)
                lat = res["latency_ms"]
                log(
                    f"  gateway r{rep + 1} {sc.key:<14} {ep.name:<10} rps={res['rps']:8.0f} "
                    f"p50={lat['p50']:7.2f} p99={lat['p99']:7.2f} ms errors={res['errors']}"
                )
    peak_rss = {ep.name: ep.server.rss_kib("VmHWM") for ep in endpoints if ep.server}
    return {
        "scenarios": [sc.__dict__ | {"key": sc.key} for sc in scs],
        "targets": [ep.name for ep in endpoints],
        "repeats": repeats,
        "seconds_per_run": seconds,
        "elapsed_s": time.monotonic() - began,
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": peak_rss,
        "raw": raw,
        "summary": summarize_matrix(raw, repeats),
    }


def _median(values: list[float | None]) -> float | None:
    clean = [v for v in values if v is not None and v == v]
    return statistics.median(clean) if clean else None


def summarize_matrix(raw: dict[str, dict[str, list[dict[str, Any]]]], repeats: int) -> dict[str, Any]:
    """Per scenario and target: medians over repeats of RPS, latency, added latency, ratios."""
    out: dict[str, Any] = {}
    for key, per_target in raw.items():
        direct = per_target.get("direct", [])
        rows: dict[str, Any] = {}
        for name, runs in per_target.items():
            row: dict[str, Any] = {
                "rps": _median([r["rps"] for r in runs]),
                "errors": sum(r["errors"] for r in runs),
                "sent": sum(r["sent"] for r in runs),
                "error_sample": next((r["error_samples"][0] for r in runs if r.get("error_samples")), None),
            }
            for pct in ("p50", "p99", "p999"):
                row[pct] = _median([r["latency_ms"][pct] for r in runs])
                if direct:
                    row[f"added_{pct}"] = _median(
                        [
                            r["latency_ms"][pct] - d["latency_ms"][pct]
                            for r, d in zip(runs, direct, strict=False)
                        ]
                    )
            if runs and runs[0].get("ttfb_ms"):
                row["ttfb_p50"] = _median([r["ttfb_ms"]["p50"] for r in runs if r.get("ttfb_ms")])
                row["ttfb_p99"] = _median([r["ttfb_ms"]["p99"] for r in runs if r.get("ttfb_ms")])
                if direct and direct[0].get("ttfb_ms"):
                    row["added_ttfb_p50"] = _median(
                        [
                            r["ttfb_ms"]["p50"] - d["ttfb_ms"]["p50"]
                            for r, d in zip(runs, direct, strict=False)
                            if r.get("ttfb_ms") and d.get("ttfb_ms")
                        ]
                    )
            if runs and "server_cpu_us_per_req" in runs[0]:
                row["server_cpu_us_per_req"] = _median([r["server_cpu_us_per_req"] for r in runs])
            rows[name] = row
        ours = per_target.get("greenlang", [])
        for peer in ("litellm", "bare", "direct"):
            theirs = per_target.get(peer, [])
            if ours and theirs:
                rows.setdefault("greenlang", {})[f"rps_vs_{peer}"] = _median(
                    [o["rps"] / t["rps"] if t["rps"] else None for o, t in zip(ours, theirs, strict=False)]
                )
            # CPU per request is capacity per core, and it barely moves with other load on the machine
            if (
                ours
                and theirs
                and "server_cpu_us_per_req" in ours[0]
                and "server_cpu_us_per_req" in theirs[0]
            ):
                rows["greenlang"][f"cpu_vs_{peer}"] = _median(
                    [
                        t["server_cpu_us_per_req"] / o["server_cpu_us_per_req"]
                        if o.get("server_cpu_us_per_req") and t.get("server_cpu_us_per_req")
                        else None
                        for o, t in zip(ours, theirs, strict=False)
                    ]
                )
        out[key] = rows
    return out
