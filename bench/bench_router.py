"""Router overhead per call: LLMRouter.generate vs the same FakeProvider called directly.

The provider answers instantly (no network, no sleep), so the difference is the
router's own work: planning, the strategy's ordering, the breaker ticket, the
failover chain and the metrics. Direct and routed calls alternate (and swap
which goes first every iteration) in one process on one event loop, so both see
the same warm caches and the same interpreter. Reported: median and p99 of each,
and the added cost = routed minus direct, per pair.

    python bench/bench_router.py [--n 10000] [--strategy priority] [--providers 3] [--uvloop] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm.providers import FakeProvider
from greenlang_llm.strategies import RoutingStrategy, parse_strategy


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(n: int, strategy: RoutingStrategy, providers: int, warmup: int) -> dict[str, Any]:
    router = LLMRouter(strategy=strategy)
    fakes = [FakeProvider(default_text="ok", price_per_1k=(0.003, 0.015)) for _ in range(providers)]
    for i, fake in enumerate(fakes):
        router.register_provider(f"p{i}", fake, priority=i + 1)
    direct = fakes[0]
    request = GenerationRequest(prompt="What is the carbon footprint of a cup of tea?", max_tokens=64)
    clock = time.perf_counter_ns
    direct_ns: list[float] = []
    routed_ns: list[float] = []
    for i in range(warmup + n):
        order = (False, True) if i % 2 else (True, False)
        for routed in order:
            start = clock()
            if routed:
                await router.generate(request)
            else:
                await direct.generate(request)
            elapsed = (clock() - start) / 1000.0
            if i >= warmup:
                (routed_ns if routed else direct_ns).append(elapsed)
    added = [r - d for r, d in zip(routed_ns, direct_ns, strict=True)]
    metrics = router.get_metrics()["global"]
    await router.close()
    return {
        "n": n,
        "strategy": strategy.value,
        "providers": providers,
        "python": sys.version.split()[0],
        "direct_us": {"median": statistics.median(direct_ns), "p99": _pct(direct_ns, 0.99)},
        "router_us": {"median": statistics.median(routed_ns), "p99": _pct(routed_ns, 0.99)},
        "added_us": {"median": statistics.median(added), "p99": _pct(added, 0.99)},
        "router_requests": metrics["total_requests"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--strategy", default="priority", help="priority | least_cost | ... | all")
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kinds = list(RoutingStrategy) if args.strategy == "all" else [parse_strategy(args.strategy)]
    if args.uvloop:
        import uvloop

        uvloop.install()
    rows = [asyncio.run(_measure(args.n, kind, args.providers, args.warmup)) for kind in kinds]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'strategy':<14} {'direct med/p99 us':>18} {'router med/p99 us':>18} {'added med/p99 us':>18}")
    for row in rows:
        d, r, a = row["direct_us"], row["router_us"], row["added_us"]
        cells = "  ".join(f"{x['median']:>8.1f} /{x['p99']:>7.1f}" for x in (d, r, a))
        print(f"{row['strategy']:<14} {cells}")
    print(f"(n={args.n} calls each, {args.providers} providers, python {rows[0]['python']}"
          f"{', uvloop' if args.uvloop else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
