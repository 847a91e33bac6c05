"""Provider cost per call: our HTTP providers vs the official SDKs vs a raw aiohttp POST.

One run, one simulator (a separate process: ``greenlang-llm simulate``, uvloop +
httptools, zero latency), three clients per API, same request:

- ``raw``: one ``aiohttp.ClientSession``, a pre-encoded body, ``post`` + ``read`` +
  ``orjson.loads`` — the floor any HTTP client pays;
- ``ours``: ``AnthropicProvider.generate`` / ``OpenAIProvider.generate`` (request
  mapping, retry wrapper, response parsing, exact pricing, ``TokenUsage``);
- ``raw+wire``: ``raw`` plus what any client returning a parsed, priced answer
  must do (``wire`` request building and response parsing, ``pricing``): the
  floor for ``ours``, to show where the difference lives;
- ``sdk``: ``anthropic.AsyncAnthropic().messages.create`` /
  ``openai.AsyncOpenAI().chat.completions.create`` (default settings but base URL).

Sequential: the clients take turns call by call (order rotated each round), so
all see the same machine state; per-call median and p99. Concurrency: each
client runs ``--calls`` calls with ``--concurrency`` in flight, in rotated
rounds; reported are per-call latency median/p99, wall time per call
(wall / calls, i.e. 1/throughput) and this process's CPU time per call (the
client's own cost, independent of the simulator's). Ratios are ours/raw,
ours/raw+wire and ours/sdk.

    python bench/bench_providers.py [--n 2000] [--calls 5000] [--concurrency 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers.base_provider import GenerationRequest
from procs import ServerSet, free_port

KEY = "sk-bench-not-a-real-key"
PROMPT = "Explain carbon accounting in 2 sentences."
MODELS = {"anthropic": "claude-3-5-haiku-20241022", "openai": "gpt-4o-mini"}
Call = Callable[[], Awaitable[Any]]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def make_clients(api: str, base: str) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    """The three clients for one API, each as a zero-argument call, plus a closer."""
    model = MODELS[api]
    request = GenerationRequest(prompt=PROMPT, max_tokens=64)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    if api == "anthropic":
        ours: Any = AnthropicProvider(model, api_key=KEY, base_url=base)
        url = base + "/v1/messages"
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
        body = orjson.dumps(
            {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
        )
        import anthropic

        sdk: Any = anthropic.AsyncAnthropic(api_key=KEY, base_url=base)

        async def sdk_call() -> Any:
            return await sdk.messages.create(
                model=model, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
            )
    else:
        ours = OpenAIProvider(model, api_key=KEY, base_url=base + "/v1")
        url = base + "/v1/chat/completions"
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
        body = orjson.dumps(
            {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_completion_tokens": 64}
        )
        import openai

        sdk = openai.AsyncOpenAI(api_key=KEY, base_url=base + "/v1")

        async def sdk_call() -> Any:
            return await sdk.chat.completions.create(
                model=model, max_completion_tokens=64, messages=[{"role": "user", "content": PROMPT}]
            )

    async def raw_call() -> Any:
        async with session.post(url, data=body, headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"raw: HTTP {resp.status}")
            return orjson.loads(data)

    async def ours_call() -> Any:
        return await ours.generate(request)

    wire: Any = __import__(f"greenlang_llm.wire.{api}", fromlist=["parse_response"])
    from greenlang_llm.pricing import price_usage
    from greenlang_llm.providers.base_provider import GenerationResponse

    async def raw_wire_call() -> Any:
        # the floor for any client that returns a parsed, priced answer: raw + wire + pricing
        payload = orjson.dumps(wire.build_request(request, model, stream=False))
        async with session.post(url, data=payload, headers=headers) as resp:
            data = orjson.loads(await resp.read())
        parsed = wire.parse_response(data)
        u = parsed.usage
        usage = price_usage(
            api, model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens
        )
        return GenerationResponse(parsed.text, api, parsed.model, usage, parsed.finish_reason, 0.0, data)

    async def close() -> None:
        await session.close()
        await ours.close()
        await sdk.close()

    return {"raw": raw_call, "raw+wire": raw_wire_call, "ours": ours_call, "sdk": sdk_call}, close


async def sequential(clients: dict[str, Call], n: int) -> dict[str, list[float]]:
    names = list(clients)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter_ns()
            await clients[name]()
            times[name].append((time.perf_counter_ns() - start) / 1000.0)
    return times


async def concurrent(call: Call, calls: int, concurrency: int) -> tuple[list[float], float, float]:
    """Latencies (µs), wall µs per call, and this process's CPU µs per call."""
    latencies: list[float] = []
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter_ns()
            await call()
            latencies.append((time.perf_counter_ns() - start) / 1000.0)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, (time.perf_counter() - start) * 1e6 / calls, (time.process_time() - cpu) * 1e6 / calls


async def run_api(api: str, base: str, args: argparse.Namespace) -> dict[str, Any]:
    clients, close = await make_clients(api, base)
    try:
        for call in clients.values():  # warm-up: pools, caches, the price catalog, imports
            for _ in range(200):
                await call()
        seq = await sequential(clients, args.n)
        conc: dict[str, dict[str, list[float]]] = {
            name: {"lat": [], "wall": [], "cpu": []} for name in clients
        }
        names = list(clients)
        rounds = 3
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                lat, wall, cpu = await concurrent(clients[name], args.calls // rounds, args.concurrency)
                conc[name]["lat"].extend(lat)
                conc[name]["wall"].append(wall)
                conc[name]["cpu"].append(cpu)
    finally:
        await close()
    out: dict[str, Any] = {}
    for name in clients:
        out[name] = {
            "seq_median_us": statistics.median(seq[name]),
            "seq_p99_us": _pct(seq[name], 0.99),
            "conc_median_us": statistics.median(conc[name]["lat"]),
            "conc_p99_us": _pct(conc[name]["lat"], 0.99),
            "conc_wall_per_call_us": statistics.median(conc[name]["wall"]),
            "conc_client_cpu_per_call_us": statistics.median(conc[name]["cpu"]),
        }
    return out


def print_table(api: str, res: dict[str, Any], concurrency: int) -> None:
    print(f"\n{api} (µs per call)")
    c = f"c{concurrency}"
    print(f"{'client':<8} {'seq median':>11} {'seq p99':>9} {c + ' median':>11} {c + ' p99':>9} "
          f"{c + ' wall/call':>14} {c + ' cpu/call':>13}")
    for name in ("raw", "raw+wire", "ours", "sdk"):
        r = res[name]
        print(f"{name:<8} {r['seq_median_us']:>11.0f} {r['seq_p99_us']:>9.0f} {r['conc_median_us']:>11.0f} "
              f"{r['conc_p99_us']:>9.0f} {r['conc_wall_per_call_us']:>14.0f} "
              f"{r['conc_client_cpu_per_call_us']:>13.0f}")
    for other in ("raw", "raw+wire", "sdk"):
        ratios = ", ".join(
            f"{label} {res['ours'][key] / res[other][key]:.2f}x"
            for label, key in (("seq median", "seq_median_us"), (f"{c} wall/call", "conc_wall_per_call_us"),
                               (f"{c} cpu/call", "conc_client_cpu_per_call_us"))
        )
        print(f"ours/{other}: {ratios}")


async def main_async(args: argparse.Namespace, base: str) -> dict[str, Any]:
    return {api: await run_api(api, base, args) for api in ("anthropic", "openai")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="sequential calls per client")
    parser.add_argument("--calls", type=int, default=6000, help="concurrent calls per client (3 rounds)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ.setdefault("GREENLANG_LLM_LOOPBACK_ONLY", "1")
    with tempfile.TemporaryDirectory() as logs, ServerSet(Path(logs)) as servers:
        argv = [sys.executable, "-m", "greenlang_llm", "simulate", "--host", "127.0.0.1", "--port", str(port)]
        servers.start("simulator", argv, base, base + "/_sim/stats")
        if args.uvloop:
            import uvloop

            uvloop.install()
        results = asyncio.run(main_async(args, base))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"simulator: separate process, zero latency; {args.n} sequential calls and "
          f"{args.calls} calls at concurrency {args.concurrency} per client")
    for api, res in results.items():
        print_table(api, res, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
