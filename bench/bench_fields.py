"""Beyond text through the gateway: tool calls, cross-API tool calls and unknown fields vs a text request.

    python -m bench.bench_fields                       # ~9 min: the work tree alone
    python -m bench.bench_fields --old-rev e079dee     # ~15 min: also the build before issue #20
    python -m bench.bench_fields --kind tools --scenario plain-c10 --repeats 30 --seconds 2 --no-wire
    python -m bench.bench_fields --quick               # ~1 min harness check

Issue #20's bars: a tool-calling request's gateway overhead within 10 % of a text request's (server
CPU per request, same run), and a same-API request carrying unknown fields costs no more than the
text path of today. One simulator and one ``greenlang-llm serve`` (started as ``bench.ab_gateway``
starts it, from ``compare_gateway.gateway_config`` plus a route ``claude`` whose only provider is the
``anthropic`` one) on 127.0.0.1; every request is an OpenAI Chat Completions call:

- ``text``: the text request of every gateway benchmark (``compare_gateway._body``), route ``bench``
  (its first provider speaks OpenAI: same API);
- ``tools``: two function tools with JSON schemas, the user text naming one of them, so the simulator
  answers with a tool call (finish ``tool_calls``), route ``bench`` (same API);
- ``tools-x``: the same request on route ``claude`` (translated to Anthropic Messages and the
  tool_use answer back to an OpenAI tool call);
- ``text-x``: the text request on route ``claude`` — not one of the bars, it tells the cost of the
  translation from the cost of the tools in ``tools-x``;
- ``unknown``: the text request plus five top-level fields this project does not know, route
  ``bench`` (same API: forwarded verbatim; checked in the simulator's request log).

Each kind runs plain and streamed (``stream_options.include_usage``), under the scenarios of
``bench.ab_gateway`` (``plain|stream`` - ``c<N>`` closed loop at concurrency N, or ``rps<N>`` open
loop at N requests per second; default ``c10`` and ``rps500`` of both). The closed loop gives the
throughput; the fixed rate gives every kind the same arrival rate, so the gateway's CPU per request
is not moved by how fast the simulator answers each kind (a tool call costs the simulator more, and
a slower closed loop batches less per event-loop turn). In every repeat each cell (build × kind)
runs once for ``--seconds``, in an order that rotates between repeats, each after the servers went
idle; server CPU per request is the gateway process's CPU time (``/proc``, as ``bench.ab_gateway``
measures it) over the requests answered. The ratios are taken per repeat against ``text`` of the
same build in the same repeat, then the median and the range over repeats are printed. ``--old-rev
REV`` starts a second gateway from ``git archive REV src`` on the same simulator and runs ``text``,
``unknown`` and ``text-x`` on it too (the build before issue #20 refused tools), so "unknown fields
now vs the text path before" is measured in the same run. Before the load, ``wire_work`` times in
this process the part of the gateway's work that depends on the kind (parse, fit, upstream body,
reply parse and render; no I/O): low-noise µs that say how much of a ratio is the kind's own work
(``--no-wire`` skips it). Loopback only; every process started is stopped at the end
(``procs.ServerSet``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import compare_gateway, loadgen
from .ab_gateway import _export, _start
from .procs import Server, ServerSet

ROOT = Path(__file__).resolve().parent.parent
CROSS_ROUTE = "claude"
KINDS = ("text", "tools", "tools-x", "text-x", "unknown")
OLD_KINDS = ("text", "unknown", "text-x")

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string", "description": "IANA name"}},
                "required": ["timezone"],
                "additionalProperties": False,
            },
        },
    },
]

UNKNOWN_FIELDS: dict[str, Any] = {
    "x_trace_id": "bench-7f3a9c",
    "x_experiment": {"arm": "b", "cohort": 17},
    "x_priority_hint": 3,
    "x_client_tags": ["bench", "fields", "issue-20"],
    "x_cache_policy": {"ttl_s": 300, "scope": "tenant"},
}


def body(kind: str, stream: bool) -> bytes:
    """The request body of ``kind`` (see the module docstring)."""
    route = CROSS_ROUTE if kind.endswith("-x") else compare_gateway.ROUTE
    if kind.startswith("text"):
        return compare_gateway._body(route, stream)
    out: dict[str, Any] = json.loads(compare_gateway._body(route, stream))
    if kind.startswith("tools"):
        out["messages"] = [{"role": "user", "content": "What is the weather in Paris? Call get_weather."}]
        out["tools"] = TOOLS
    elif kind == "unknown":
        out.update(UNKNOWN_FIELDS)
    else:
        raise ValueError(kind)
    return json.dumps(out).encode()


def gateway_config(sim: str, port: int, db_path: Path) -> str:
    """The gateway benchmarks' config, plus a route whose only provider speaks Anthropic."""
    return compare_gateway.gateway_config(sim, port, db_path).replace(
        "[[keys]]", f'[[routes]]\nname = "{CROSS_ROUTE}"\nproviders = ["fallback"]\n\n[[keys]]', 1
    )


def start_gateway(servers: ServerSet, sim: Server, work: Path, env: dict[str, str]) -> Server:
    """The gateway ``bench.ab_gateway`` starts, with :func:`gateway_config`'s extra route."""
    return _start(servers, sim, work, env, gateway_config)[0]


HEADERS = {"content-type": "application/json", "authorization": f"Bearer {compare_gateway.GATEWAY_KEY}"}


def _post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _last_upstream(sim: Server) -> dict[str, Any]:
    with urllib.request.urlopen(sim.base_url + "/_sim/requests?last=1", timeout=5) as resp:
        entries = json.loads(resp.read())["requests"]
    return entries[-1] if entries else {}


def check(gateway: Server, sim: Server, kind: str, stream: bool, *, forwards: bool = True) -> str:
    """One request of ``kind``: that it is served as the benchmark says (raises if not); a note.
    ``forwards``: the build must forward the unknown fields (the build before issue #20 did not)."""
    status, raw = _post(gateway.base_url + "/v1/chat/completions", body(kind, stream), HEADERS)
    if status != 200:
        raise RuntimeError(f"{kind} {'stream' if stream else 'plain'}: HTTP {status}: {raw[:300]!r}")
    upstream = _last_upstream(sim)
    sent = upstream.get("body") or {}
    path = upstream.get("path")
    expected_path = "/v1/messages" if kind.endswith("-x") else "/v1/chat/completions"
    if path != expected_path:
        raise RuntimeError(f"{kind}: upstream path {path}, expected {expected_path}")
    notes = [f"upstream {path}"]
    if kind.startswith("tools"):
        text = raw.decode()
        if '"tool_calls"' not in text or "get_weather" not in text:
            raise RuntimeError(f"{kind}: the answer is not a tool call: {text[:300]}")
        notes.append(f"answer: a get_weather tool call; upstream got {len(sent.get('tools') or ())} tools")
    if kind == "unknown":
        kept = [k for k in UNKNOWN_FIELDS if sent.get(k) == UNKNOWN_FIELDS[k]]
        if forwards and len(kept) != len(UNKNOWN_FIELDS):
            raise RuntimeError(f"unknown: only {kept} of {list(UNKNOWN_FIELDS)} reached the upstream")
        notes.append(f"unknown fields upstream: {len(kept)} of {len(UNKNOWN_FIELDS)} verbatim")
    return "; ".join(notes)


# ---------------------------------------------------------------- the kind-dependent work, in process


def _best_us(fn: Callable[[], object], n: int) -> float:
    """Fastest of 5 batches of ``n`` calls, in µs per call."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - began) / n * 1e6)
    return best


def wire_work(sim: Server, rounds: int = 4) -> list[dict[str, Any]]:
    """µs of the gateway's work that depends on the request's kind, in this process, no I/O.

    Per kind and plain/streamed: ``parse`` (the route's body parse, ``OpenAIDialect.parse``),
    ``fit`` (what the router's ``able_to_serve`` and the provider's ``dropped_params`` compute:
    each route member's ``fit`` and the serving one's again, for a ``rich`` request only),
    ``build`` (the upstream body, ``_build_body`` + ``orjson.dumps``) and ``answer`` (the
    simulator's real reply to that body, captured once: plain, ``orjson.loads`` + ``_parse_body``
    + ``OpenAIDialect.render``; streamed, SSE decode + the stream parser + the OpenAI stream
    writer). HTTP, routing, settlement and the ledger are the same code for every kind and are
    not in it. Each figure is the fastest of ``rounds`` × 5 batches, the kinds taking turns, so
    a busy moment of the machine does not land on one kind.
    """
    from greenlang_llm._types import GenerationResponse, TokenUsage
    from greenlang_llm.gateway.routes_openai import DIALECT
    from greenlang_llm.providers.anthropic_provider import AnthropicProvider
    from greenlang_llm.providers.openai_provider import OpenAIProvider
    from greenlang_llm.wire.sse import SSEDecoder

    openai = OpenAIProvider(compare_gateway.OPENAI_MODEL, api_key="sk-bench", base_url=sim.base_url + "/v1")
    anthropic = AnthropicProvider(
        compare_gateway.ANTHROPIC_MODEL, api_key="sk-ant-bench", base_url=sim.base_url
    )
    usage = TokenUsage(10, 5, 15)
    cells: list[tuple[dict[str, Any], dict[str, Callable[[], object]]]] = []
    for kind in KINDS:
        for stream in (False, True):
            raw_body = body(kind, stream)
            cross = kind.endswith("-x")
            serving = anthropic if cross else openai
            route = (anthropic,) if cross else (openai, anthropic)
            request, options = DIALECT.parse(orjson.loads(raw_body))
            upstream = orjson.dumps(serving._build_body(request, stream))
            path = "/v1/messages" if cross else "/v1/chat/completions"
            headers = {
                "content-type": "application/json",
                "authorization": "Bearer sk-bench",
                "x-api-key": "sk-ant-bench",
                "anthropic-version": "2023-06-01",
            }
            with urllib.request.urlopen(
                urllib.request.Request(sim.base_url + path, data=upstream, headers=headers), timeout=10
            ) as resp:
                reply = resp.read()

            def parse(raw_body: bytes = raw_body) -> object:
                return DIALECT.parse(orjson.loads(raw_body))

            def fit(request: Any = request, route: Any = route, serving: Any = serving) -> None:
                if request.rich:
                    for provider in route:
                        provider.fit(request)
                    serving.fit(request)

            def build(request: Any = request, serving: Any = serving, stream: bool = stream) -> bytes:
                return orjson.dumps(serving._build_body(request, stream))

            def plain(request: Any = request, serving: Any = serving, reply: bytes = reply) -> bytes:
                raw = orjson.loads(reply)
                parsed = serving._parse_body(raw, request)
                response = GenerationResponse(
                    text=parsed.text,
                    provider=serving.catalog_id,
                    model_id=parsed.model or serving.model_id,
                    usage=usage,
                    finish_reason=parsed.finish_reason,
                    raw=raw,
                    content=parsed.content,
                    refusal=parsed.refusal,
                    logprobs=parsed.logprobs,
                    api=serving.api,
                )
                return DIALECT.render("req_0123456789abcdef", response)

            def streamed(
                request: Any = request, serving: Any = serving, reply: bytes = reply, options: Any = options
            ) -> bytes:
                parser = serving._new_stream_parser(request)
                writer = DIALECT.writer(
                    "req_0123456789abcdef", compare_gateway.ROUTE, options, request, serving
                )
                out = [writer.start()]
                for event in SSEDecoder().feed(reply):
                    if parser.done:
                        break
                    delta = parser.feed(event)
                    if delta is not None:
                        out.append(writer.delta(delta) if isinstance(delta, str) else writer.deltas(delta))
                parsed = parser.finish()
                out.append(writer.finish(parsed.finish_reason, usage))
                return b"".join(out)

            info = {"kind": kind, "mode": "stream" if stream else "plain", "reply_bytes": len(reply)}
            parts = {"parse": parse, "fit": fit, "build": build, "answer": streamed if stream else plain}
            cells.append((info, parts))
    best: dict[tuple[int, str], float] = {}
    for _ in range(rounds):
        for i, (_info, parts) in enumerate(cells):
            for name, fn in parts.items():
                us = _best_us(fn, 200 if name == "answer" else 1000)
                best[i, name] = min(best.get((i, name), us), us)
    rows = []
    for i, (info, parts) in enumerate(cells):
        row = info | {name: best[i, name] for name in parts}
        row["sum"] = sum(best[i, name] for name in parts)
        rows.append(row)
    return rows


def print_wire(rows: list[dict[str, Any]]) -> None:
    print("\nkind-dependent work in process (µs per request, fastest batches; no I/O)")
    print(
        f"{'kind':8} {'mode':6} {'parse':>6} {'fit':>6} {'build':>6} {'answer':>7} {'sum':>7} {'vs text':>8}"
    )
    text = {r["mode"]: r["sum"] for r in rows if r["kind"] == "text"}
    for r in rows:
        print(
            f"{r['kind']:8} {r['mode']:6} {r['parse']:6.1f} {r['fit']:6.1f} {r['build']:6.1f} "
            f"{r['answer']:7.1f} {r['sum']:7.1f} {r['sum'] - text[r['mode']]:+8.1f}"
        )


@dataclass
class Run:
    rps: float
    cpu_us: float
    p99_ms: float
    sim_cpu_us: float
    errors: int
    error_sample: str | None = None


async def run_cell(gateway: Server, sim: Server, kind: str, scenario: str, seconds: float) -> Run:
    """One run of ``kind`` under ``scenario`` (``plain|stream`` - ``c<N>|rps<N>``)."""
    mode, _, level = scenario.partition("-")
    stream = mode == "stream"
    target = loadgen.Target(gateway.base_url + "/v1/chat/completions", body(kind, stream), HEADERS, stream)
    cpu0, sim0 = gateway.cpu_seconds(), sim.cpu_seconds()
    if level.startswith("rps"):
        result = await loadgen.run_rate(target, int(level[3:]), 10**6, seconds)
    else:
        result = await loadgen.run_concurrency(target, int(level[1:]), 10**6, seconds)
    cpu, sim_cpu = gateway.cpu_seconds() - cpu0, sim.cpu_seconds() - sim0
    ok = max(1, result.ok)
    data = result.as_dict()
    return Run(
        float(data["rps"]),
        cpu / ok * 1e6,
        float(data["latency_ms"]["p99"]),
        sim_cpu / ok * 1e6,
        result.errors,
        result.error_samples[0] if result.error_samples else None,
    )


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def summarize(raw: dict[str, dict[str, list[Run]]], builds: list[str]) -> dict[str, Any]:
    """Per mode, build and kind: medians and ranges; ratios per repeat against ``text`` of that build."""
    out: dict[str, Any] = {}
    for mode, cells in raw.items():
        rows: dict[str, Any] = {}
        for cell, runs in cells.items():
            build = cell.split(":", 1)[0]
            text = cells[f"{build}:text"]
            row = {
                "rps": statistics.median(r.rps for r in runs),
                "cpu_us": _stats([r.cpu_us for r in runs]),
                "cpu_us_per_repeat": [round(r.cpu_us) for r in runs],
                "p99_ms": statistics.median(r.p99_ms for r in runs),
                "sim_cpu_us": statistics.median(r.sim_cpu_us for r in runs),
                "errors": sum(r.errors for r in runs),
                "cpu_vs_text": _stats([r.cpu_us / t.cpu_us for r, t in zip(runs, text, strict=True)]),
            }
            if len(builds) > 1 and build != "old":
                old = cells["old:text"]
                row["cpu_vs_old_text"] = _stats([r.cpu_us / t.cpu_us for r, t in zip(runs, old, strict=True)])
                if f"old:{cell.split(':', 1)[1]}" in cells:
                    same = cells[f"old:{cell.split(':', 1)[1]}"]
                    row["cpu_vs_old_same"] = _stats(
                        [r.cpu_us / t.cpu_us for r, t in zip(runs, same, strict=True)]
                    )
            rows[cell] = row
        out[mode] = rows
    return out


def _ratio(stat: tuple[float, float, float] | None) -> str:
    if stat is None:
        return ""
    med, lo, hi = stat
    return f"{med:5.3f} ({lo:.3f}–{hi:.3f})"


def print_report(summary: dict[str, Any], builds: list[str]) -> None:
    for mode, rows in summary.items():
        print(f"\n{mode} (medians over repeats; CPU = gateway CPU per request, range over repeats)")
        head = f"{'cell':16} {'RPS':>7} {'CPU µs/req':>22} {'p99 ms':>7} {'sim µs':>7} {'vs text':>20}"
        if len(builds) > 1:
            head += f" {'vs old text':>20} {'vs old same':>20}"
        print(head)
        for cell, row in rows.items():
            med, lo, hi = row["cpu_us"]
            line = (
                f"{cell:16} {row['rps']:7,.0f} {med:8,.0f} ({lo:,.0f}–{hi:,.0f}) {row['p99_ms']:7.2f} "
                f"{row['sim_cpu_us']:7,.0f} {_ratio(row['cpu_vs_text']):>20}"
            )
            if len(builds) > 1:
                line += f" {_ratio(row.get('cpu_vs_old_text')):>20} {_ratio(row.get('cpu_vs_old_same')):>20}"
            if row["errors"]:
                line += f"  errors={row['errors']}"
            print(line)
        for cell, row in rows.items():
            print(f"  {cell:16} CPU per repeat: {', '.join(f'{v:,}' for v in row['cpu_us_per_repeat'])}")


def _revision() -> str:
    """``HEAD``'s short hash, and whether the work tree measured differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + (" with uncommitted changes in src/" if dirty else "")


def _loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_fields", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--old-rev", help="also measure the build of this git revision (text, unknown, text-x)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--scenario",
        action="append",
        default=None,
        help="plain|stream - c<N>|rps<N> (repeatable; default plain-c10, stream-c10, plain-rps500, "
        "stream-rps500)",
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        default=None,
        help="kinds to load (repeatable; default all; text is always measured: the ratios' base)",
    )
    parser.add_argument("--no-wire", action="store_true", help="skip the in-process part (wire_work)")
    parser.add_argument("--quick", action="store_true", help="2 repeats of 1 s: checks the harness works")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where the raw JSON goes"
    )
    args = parser.parse_args(argv)
    repeats, seconds = (2, 1.0) if args.quick else (args.repeats, args.seconds)
    modes = args.scenario or ["plain-c10", "stream-c10", "plain-rps500", "stream-rps500"]
    builds = ["new", "old"] if args.old_rev else ["new"]
    load_start = _loadavg()
    revision = _revision()
    with (
        tempfile.TemporaryDirectory(prefix="greenlang-fields-") as tmp,
        ServerSet(Path(tmp) / "logs") as servers,
    ):
        work = Path(tmp)
        sim = compare_gateway.start_simulator(servers)
        gateways = {"new": start_gateway(servers, sim, work / "gateway-new", {})}
        if args.old_rev:
            old_env = {"PYTHONPATH": _export(args.old_rev, work / "src-old")}
            gateways["old"] = start_gateway(servers, sim, work / "gateway-old", old_env)
        kinds = [k for k in KINDS if k == "text" or args.kind is None or k in args.kind]
        old_kinds = [k for k in OLD_KINDS if k in kinds] if args.old_rev else []
        cells = [("new", k) for k in kinds] + [("old", k) for k in old_kinds]
        for build, kind in cells:
            for stream in (False, True):
                note = check(gateways[build], sim, kind, stream, forwards=build == "new")
                print(f"check {build}:{kind} {'stream' if stream else 'plain'}: {note}", flush=True)
        wire = [] if args.no_wire else wire_work(sim, rounds=1 if args.quick else 4)
        if wire:
            print_wire(wire)
        endpoints = [
            compare_gateway.Endpoint(name, "", {}, server, "")
            for name, server in {**gateways, "sim": sim}.items()
        ]

        async def measure() -> dict[str, dict[str, list[Run]]]:
            raw: dict[str, dict[str, list[Run]]] = {}
            for mode in modes:
                per = raw.setdefault(mode, {f"{b}:{k}": [] for b, k in cells})
                for build, kind in cells:  # warm every cell
                    await run_cell(gateways[build], sim, kind, mode, 1.0)
                for rep in range(repeats):
                    shift = rep % len(cells)
                    order = cells[shift:] + cells[:shift]
                    if rep % 2:
                        order.reverse()
                    for build, kind in order:
                        await compare_gateway._settle(endpoints)
                        run = await run_cell(gateways[build], sim, kind, mode, seconds)
                        per[f"{build}:{kind}"].append(run)
                        print(
                            f"  {mode} r{rep + 1} {build}:{kind:8} {run.rps:7,.0f} RPS {run.cpu_us:6,.0f} µs "
                            f"p99 {run.p99_ms:6.2f} ms"
                            + (f" errors={run.errors} ({run.error_sample})" if run.errors else ""),
                            file=sys.stderr,
                            flush=True,
                        )
            return raw

        raw = asyncio.run(measure())
    summary = summarize(raw, builds)
    print(
        f"\nnew = work tree at {revision} (at start; {_revision()} at end)"
        f"{f', old = {args.old_rev}' if args.old_rev else ''}; "
        f"{seconds:g} s per run, {repeats} repeats; load average at start {load_start}, at end "
        f"{_loadavg()}"
    )
    if wire:
        print_wire(wire)
    print_report(summary, builds)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"fields-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "args": vars(args) | {"out": str(args.out)},
                "revision": revision,
                "summary": summary,
                "wire_work": wire,
                "raw": {m: {c: [r.__dict__ for r in rs] for c, rs in cs.items()} for m, cs in raw.items()},
            },
            indent=1,
        )
    )
    print(f"\nraw results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
