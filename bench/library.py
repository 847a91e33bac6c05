"""Library comparison driver: our router and LiteLLM's, each in its own fresh process.

Each side runs as a subprocess (ours with this interpreter, LiteLLM's with the peer
venv's), one repeat per process, alternating which side goes first, so neither gets a
warmer machine. Each side also times a raw aiohttp POST to the same simulator in the same
process; "added overhead" is router minus raw *from the same process and repeat*, and
the reported figure is the median over repeats of those differences and their ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def _run_side(python: str, script: str, sim: str, n: int, warmup: int, concurrency: int) -> dict[str, Any]:
    argv = [
        python,
        str(BENCH_DIR / script),
        "--sim",
        sim,
        "--n",
        str(n),
        "--repeats",
        "1",
        "--warmup",
        str(warmup),
        "--concurrency",
        str(concurrency),
    ]
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=600, check=False, start_new_session=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _added(rep: dict[str, Any], name: str) -> dict[str, float]:
    """Overhead of ``name`` over the raw POST measured in the same process and repeat."""
    this, raw = rep[name], rep["raw"]
    return {
        "added_p50_ms": this["latency_ms"]["p50"] - raw["latency_ms"]["p50"],
        "added_p99_ms": this["latency_ms"]["p99"] - raw["latency_ms"]["p99"],
        "added_cpu_us": this["cpu_us_per_call"] - raw["cpu_us_per_call"],
        "calls_per_s": this["calls_per_s"],
        "raw_calls_per_s": raw["calls_per_s"],
        "errors": this["errors"],
    }


def run(
    sim: str, peer_python: Path | None, quick: bool, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    n, warmup, concurrency = (100, 10, 50) if quick else (1000, 200, 50)
    sides: list[tuple[str, str, str]] = [("greenlang", sys.executable, "compare_library.py")]
    if peer_python is not None:
        sides.append(("litellm", str(peer_python), "litellm_library.py"))
    else:
        log("LiteLLM library side skipped: no peer venv")
    per_repeat: list[dict[str, Any]] = []
    for rep in range(repeats):
        order = sides if rep % 2 == 0 else list(reversed(sides))
        results: dict[str, Any] = {}
        for side, python, script in order:
            log(f"  library r{rep + 1} {side} …")
            results[side] = _run_side(python, script, sim, n, warmup, concurrency)["repeats"][0]
        row: dict[str, Any] = {}
        for mode in ("sequential", "concurrent"):
            ours = results["greenlang"][mode]
            row[mode] = {"llm_router": _added(ours, "llm_router"), "provider": _added(ours, "provider")}
            if "litellm" in results:
                row[mode]["litellm_router"] = _added(results["litellm"][mode], "litellm_router")
        per_repeat.append(row)
        for mode in ("sequential", "concurrent"):
            cells = " ".join(
                f"{k}={v['added_p50_ms'] * 1000:.0f}µs/{v['added_cpu_us']:.0f}µsCPU"
                for k, v in row[mode].items()
            )
            log(f"  library r{rep + 1} {mode}: {cells}")
    return {
        "calls_per_measurement": n,
        "concurrency": concurrency,
        "repeats": repeats,
        "raw": per_repeat,
        "summary": _summarize(per_repeat),
    }


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else None


def _summarize(per_repeat: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("sequential", "concurrent"):
        names = per_repeat[0][mode].keys()
        rows: dict[str, Any] = {}
        for name in names:
            cells = [rep[mode][name] for rep in per_repeat]
            rows[name] = {key: _median([c[key] for c in cells]) for key in cells[0] if key != "errors"}
            rows[name]["errors"] = sum(c["errors"] for c in cells)
        if "litellm_router" in rows:
            for key in ("added_p50_ms", "added_p99_ms", "added_cpu_us"):
                ratios = []
                for rep in per_repeat:
                    theirs = rep[mode]["litellm_router"][key]
                    if theirs > 0:
                        ratios.append(rep[mode]["llm_router"][key] / theirs)
                rows["llm_router"][f"{key}_vs_litellm"] = _median(ratios)
            rows["llm_router"]["calls_per_s_vs_litellm"] = _median(
                [
                    rep[mode]["llm_router"]["calls_per_s"] / rep[mode]["litellm_router"]["calls_per_s"]
                    for rep in per_repeat
                ]
            )
        out[mode] = rows
    return out
