"""A small, bounded HTTP load generator for loopback servers.

Why our own: the comparison must drive every server (ours, LiteLLM's proxy, a bare
forwarder, the simulator itself) with exactly the same client, in the same run, and the
client must be importable from both virtual environments (it needs only aiohttp and the
standard library). Two modes:

- fixed concurrency (closed loop): ``concurrency`` workers each send the next request as
  soon as the previous one finishes — measures the throughput a server sustains;
- fixed rate (open loop): requests start on a schedule of ``rate`` per second whatever
  the server does, and latency counts from the *scheduled* start, so a stalled server
  cannot hide its queueing (no coordinated omission).

Every run is bounded by a request count and a wall-clock limit, and refuses any target
that is not a loopback address. For streams it records the time to the first body byte.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = [
    "CallStats",
    "LoadResult",
    "Target",
    "assert_loopback",
    "measure_calls",
    "percentile",
    "raw_post",
    "run_concurrency",
    "run_rate",
    "summarize",
]

# Open-loop cap: past it a scheduled request counts as an error ("overload") instead of piling a
# backlog on a server that has already fallen behind (at 500 RPS, 256 in flight means > 0.5 s latency).
MAX_IN_FLIGHT = 256


def assert_loopback(url: str) -> None:
    """Refuse anything but 127.0.0.0/8, ::1 or localhost: load never leaves this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing to send load to non-loopback address {host!r}")


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(round(pct * len(sorted_values) / 100.0, 9))  # round: 99.9% of 1000 is 999, not 999.0…1
    return float(sorted_values[min(max(rank, 1), len(sorted_values)) - 1])


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50/p99/p99.9/mean/max of a list of milliseconds."""
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "p999": percentile(ordered, 99.9),
        "mean": (sum(ordered) / len(ordered)) if ordered else math.nan,
        "max": ordered[-1] if ordered else math.nan,
    }


@dataclass(frozen=True)
class Target:
    """One endpoint to load: a POST of a fixed body (plain or streaming)."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False


@dataclass
class LoadResult:
    mode: str
    level: float  # concurrency, or requests per second
    sent: int = 0
    ok: int = 0
    errors: int = 0
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def note_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:200])

    def as_dict(self) -> dict[str, Any]:
        """Figures only (no raw samples): what the report needs."""
        return {
            "mode": self.mode,
            "level": self.level,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 4),
            "rps": (self.ok / self.duration_s) if self.duration_s > 0 else 0.0,
            "latency_ms": summarize(self.latencies_ms),
            "ttfb_ms": summarize(self.ttfb_ms) if self.ttfb_ms else None,
            "error_samples": self.error_samples,
        }


async def _one(session: aiohttp.ClientSession, target: Target, result: LoadResult, start: float) -> None:
    """Send one request; latency counts from ``start`` (the scheduled time in open-loop mode)."""
    result.sent += 1
    try:
        async with session.post(target.url, data=target.body, headers=target.headers) as resp:
            if target.stream:
                first: float | None = None
                async for _chunk in resp.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                if first is not None:
                    result.ttfb_ms.append((first - start) * 1000.0)
            else:
                await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        result.note_error(f"{type(exc).__name__}: {exc}")
        return
    if status != 200:
        result.note_error(f"HTTP {status}")
        return
    result.ok += 1
    result.latencies_ms.append((time.perf_counter() - start) * 1000.0)


def _session(limit: int, timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


async def run_concurrency(
    target: Target,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    *,
    warmup: int = 0,
    request_timeout_s: float = 30.0,
) -> LoadResult:
    """Closed loop: ``concurrency`` workers until ``max_requests`` were sent or ``max_seconds`` passed."""
    assert_loopback(target.url)
    result = LoadResult(mode="concurrency", level=concurrency)
    async with _session(concurrency, request_timeout_s) as session:
        if warmup:
            scratch = LoadResult(mode="warmup", level=concurrency)
            await asyncio.gather(
                *(_one(session, target, scratch, time.perf_counter()) for _ in range(warmup))
            )
        budget = [max_requests]
        began = time.perf_counter()
        deadline = began + max_seconds

        async def worker() -> None:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                await _one(session, target, result, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.duration_s = time.perf_counter() - began
    return result


async def run_rate(
    target: Target,
    rate: float,
    max_requests: int,
    max_seconds: float,
    *,
    warmup: int = 0,
    request_timeout_s: float = 30.0,
) -> LoadResult:
    """Open loop: one request every ``1/rate`` s on schedule, bounded by count and time.

    The duration is the schedule's length (``sent / rate``) plus the drain of the last
    in-flight requests, so ``rps`` reads below ``rate`` when the server falls behind.
    """
    assert_loopback(target.url)
    result = LoadResult(mode="rate", level=rate)
    count = min(max_requests, max(1, int(rate * max_seconds)))
    async with _session(0, request_timeout_s) as session:
        if warmup:
            scratch = LoadResult(mode="warmup", level=rate)
            await asyncio.gather(
                *(_one(session, target, scratch, time.perf_counter()) for _ in range(warmup))
            )
        pending: set[asyncio.Task[None]] = set()
        began = time.perf_counter()
        hard_stop = began + max_seconds * 2 + 5.0
        for i in range(count):
            scheduled = began + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() > hard_stop:
                break
            if len(pending) >= MAX_IN_FLIGHT:
                result.sent += 1
                result.note_error("overload: client in-flight cap reached")
                continue
            task = asyncio.create_task(_one(session, target, result, scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=max(0.1, hard_stop - time.perf_counter()))
            late = list(pending)
            for task in late:
                task.cancel()
                result.note_error("unanswered at the run's time limit")
            await asyncio.gather(*late, return_exceptions=True)
        result.duration_s = time.perf_counter() - began
    return result


@dataclass
class CallStats:
    """In-process timing of ``n`` awaited calls: what the library comparison reports."""

    name: str
    concurrency: int
    calls: int
    errors: int
    wall_s: float
    cpu_s: float
    latencies_ms: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "errors": self.errors,
            "calls_per_s": (self.calls / self.wall_s) if self.wall_s > 0 else 0.0,
            "cpu_us_per_call": (self.cpu_s / self.calls * 1e6) if self.calls else math.nan,
            "latency_ms": summarize(self.latencies_ms),
        }


async def measure_calls(
    name: str, call: Callable[[], Awaitable[object]], n: int, concurrency: int = 1
) -> CallStats:
    """Await ``call()`` ``n`` times from ``concurrency`` workers; wall time, CPU time, per-call latency.

    CPU time is this process's (``time.process_time``): the upstream runs in another
    process, so CPU per call is the client-side cost alone, the figure least disturbed by
    other load on a shared 2-core machine.
    """
    latencies: list[float] = []
    errors = [0]
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors[0] += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000.0)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return CallStats(name, concurrency, n, errors[0], wall, cpu, latencies)


def raw_post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> Callable[[], Awaitable[bytes]]:
    """The least a client can do: POST pre-encoded bytes, read the answer. The baseline of 'added'."""

    async def call() -> bytes:
        async with session.post(url, data=body, headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return data

    return call


def _main(argv: Sequence[str] | None = None) -> int:
    """``python bench/loadgen.py URL --body-file F [--concurrency C | --rate R]`` → JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    headers = {"content-type": "application/json"}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    target = Target(args.url, body, headers, args.stream)
    if args.rate:
        coro = run_rate(target, args.rate, args.count, args.seconds)
    else:
        coro = run_concurrency(target, args.concurrency, args.count, args.seconds)
    result = asyncio.run(coro)
    json.dump(result.as_dict(), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
