"""``python -m bench all|library|gateway|ledger [--quick]`` — greenlang-llm side by side with LiteLLM.

One command, one machine, one run: installs the peers into ``bench/.venv-peers`` (never
into the project's venv), starts the simulator and every server on 127.0.0.1, measures,
stops everything it started (also on failure or Ctrl-C), prints the tables, saves the raw
JSON under ``bench/results/`` and — for a full run — rewrites the generated block of
``docs/benchmarks.md`` and the latency-vs-load chart next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import importlib.metadata as md
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from . import compare_gateway, library, loadgen, peers, report
from .procs import ServerSet

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUR_PACKAGES = ("greenlang-llm", "aiohttp", "orjson", "starlette", "uvicorn", "uvloop", "httptools")
CHART_NAME = "benchmarks-latency-vs-load.svg"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    return {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + (" (with uncommitted changes)" if dirty else "")


def _loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def our_versions() -> dict[str, str]:
    out = {}
    for name in OUR_PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_schema_url(log: Any) -> str | None:
    """A throw-away schema on the local PostgreSQL, or None when it is not reachable."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2):
            pass
    except Exception as exc:
        log(f"ledger: PostgreSQL unreachable, skipped ({exc})")
        return None
    return f"{PG_URL}?schema=gl_bench_{uuid.uuid4().hex[:8]}"


def _pg_drop(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def run_ledger(quick: bool, log: Any) -> dict[str, Any]:
    """The ledger helper's measurements (bench/bench_ledger.py), SQLite and PostgreSQL, at our sizes."""
    try:
        module = importlib.import_module("bench.bench_ledger")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.bench_ledger":
            raise
        return {"ledger_note": "bench/bench_ledger.py is not present; the ledger benchmark was skipped."}
    writes, records = (400, 5_000) if quick else (20_000, 1_000_000)
    rows: list[dict[str, Any]] = []

    def add(backend: str, values: dict[str, Any], suffix: str = "") -> None:
        # bench_ledger gives (wall clock, per CPU second of its process) pairs, or plain numbers
        for name, value in values.items():
            wall, cpu = value if isinstance(value, tuple | list) else (value, None)
            rows.append(
                {"backend": backend, "measure": name + suffix, "wall clock": wall, "by CPU time": cpu}
            )

    with tempfile.TemporaryDirectory() as tmp:
        log(f"ledger: SQLite writes ({writes:,}) …")
        add("SQLite", module.bench_writes(f"sqlite:///{tmp}/w.db", writes), ", records/s")
        log(f"ledger: SQLite reports over {records:,} records …")
        add(f"SQLite, {records:,} records", module.bench_reports(f"sqlite:///{tmp}/r.db", records))
    url = _pg_schema_url(log)
    if url:
        try:
            log(f"ledger: PostgreSQL writes ({writes // 4:,}) …")
            add("PostgreSQL", module.bench_writes(url, writes // 4), ", records/s")
            _pg_drop(url)
            log(f"ledger: PostgreSQL reports over {records:,} records …")
            add(f"PostgreSQL, {records:,} records", module.bench_reports(url, records))
        finally:
            _pg_drop(url)
    return {"ledger": {"rows": rows}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "library", "gateway", "ledger"])
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts, one repeat: checks the harness works"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats per comparison (default: library 3, gateway 5; quick 1)",
    )
    parser.add_argument(
        "--peers",
        choices=["auto", "existing", "skip"],
        default="auto",
        help="auto: install LiteLLM into bench/.venv-peers if missing; existing: use it only if "
        "present; skip: ours only",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="markdown file whose generated block to rewrite (default docs/benchmarks.md for a "
        "full run; a --quick run writes no docs unless given)",
    )
    parser.add_argument(
        "--simulator",
        default=None,
        help="use this already-running loopback simulator instead of starting one",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where the raw JSON goes")
    args = parser.parse_args(argv)
    # the gateway figures move most with other load on a shared machine: more repeats, shorter runs
    lib_repeats = args.repeats or (1 if args.quick else 3)
    gw_repeats = args.repeats or (1 if args.quick else 5)
    docs = args.docs if args.docs is not None else (None if args.quick else ROOT / "docs" / "benchmarks.md")
    started = time.monotonic()
    command = "python -m bench " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    results: dict[str, Any] = {
        "meta": {
            "command": command.strip(),
            "machine": machine_info(),
            "versions": {"greenlang-llm side": our_versions()},
            "notes": [],
        }
    }
    failures: list[str] = []
    results["meta"]["machine"]["load average at start (1/5/15 min)"] = _loadavg()
    results["meta"]["machine"]["git revision"] = _git_revision()

    peer_python = None
    wants_peers = args.what in ("all", "library", "gateway") and args.peers != "skip"
    if wants_peers:
        _log("peers: checking bench/.venv-peers …")
        peer_python = peers.ensure_peers(install=args.peers == "auto")
        if peer_python is None:
            results["meta"]["notes"].append(
                "LiteLLM was not measured: its peer venv is absent (--peers existing)."
            )
        else:
            results["meta"]["versions"]["LiteLLM side (bench/.venv-peers)"] = peers.peer_versions()

    workdir = Path(tempfile.mkdtemp(prefix="greenlang-bench-"))
    _log(f"work dir (configs, server logs): {workdir}")
    try:
        with ServerSet(workdir / "logs") as servers:
            sim, sim_server = None, None
            if args.simulator:
                sim = args.simulator.rstrip("/")
                loadgen.assert_loopback(sim)
            elif args.what in ("all", "library", "gateway"):
                sim_server = compare_gateway.start_simulator(servers)
                sim = sim_server.base_url
                _log(f"simulator at {sim}")
            if args.what in ("all", "library") and sim:
                _log("library: LLMRouter vs litellm.Router vs direct provider …")
                try:
                    results["library"] = library.run(sim, peer_python, args.quick, lib_repeats, _log)
                except Exception as exc:
                    failures.append(f"library: {exc}")
                    traceback.print_exc()
            if args.what in ("all", "gateway") and sim:
                _log("gateway: starting servers …")
                try:
                    endpoints = compare_gateway.start_targets(
                        servers, sim, sim_server, workdir, peer_python, _log
                    )
                    _log("gateway: " + ", ".join(f"{e.name}={e.url}" for e in endpoints))
                    results["gateway"] = _run_async(
                        compare_gateway.run_matrix(endpoints, args.quick, gw_repeats, _log)
                    )
                except Exception as exc:
                    failures.append(f"gateway: {exc}")
                    traceback.print_exc()
            if args.what in ("all", "ledger"):
                _log("ledger …")
                try:
                    results.update(run_ledger(args.quick, _log))
                except Exception as exc:
                    failures.append(f"ledger: {exc}")
                    traceback.print_exc()
    except KeyboardInterrupt:
        _log("interrupted: every server was stopped")
        return 130
    finally:
        _log("all servers stopped")

    meta = results["meta"]
    meta["elapsed_s"] = time.monotonic() - started
    meta["machine"]["load average at end (1/5/15 min)"] = _loadavg()
    meta["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta["notes"] += [f"FAILED: {f}" for f in failures]
    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = (
        args.out
        / f"bench-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}.json"
    )
    raw_path.write_text(json.dumps(results, indent=1, default=str))
    print(report.terminal(results))
    print(f"\nraw results: {raw_path}")
    if docs is not None:
        chart = report.svg_chart(results)
        chart_name = None
        if chart:
            chart_name = CHART_NAME
            docs.parent.mkdir(parents=True, exist_ok=True)
            (docs.parent / CHART_NAME).write_text(chart)
        report.rewrite_docs(docs, report.markdown(results, chart_name))
        print(f"docs: {docs}" + (f" (+ {docs.parent / CHART_NAME})" if chart else ""))
    if failures:
        _log(f"server logs kept in {workdir / 'logs'}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    _log(f"done in {meta['elapsed_s']:.0f} s" + (f"; {len(failures)} part(s) failed" if failures else ""))
    return 1 if failures else 0


def _run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
