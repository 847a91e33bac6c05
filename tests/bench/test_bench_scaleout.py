"""bench_scaleout: summary, table and configs on made-up numbers (run: python -m bench.bench_scaleout)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import bench_scaleout as bs  # noqa: E402


def _run(p50: float) -> dict[str, float]:
    return {"p50_ms": p50, "p99_ms": p50 * 2, "rps_c32": 1000.0, "redis_scripts_per_req": 4.0,
            "redis_commands_per_req": 30.0, "server_cpu_us_per_req": 900.0, "errors": 0}  # fmt: skip


def test_added_p50_is_the_median_of_same_repeat_differences() -> None:
    raw = {
        "local-1": [_run(1.0), _run(2.0), _run(1.5)],
        "redis-1": [_run(1.5), _run(2.1), _run(2.5)],  # +0.5, +0.1, +1.0
        "local-2": [_run(1.0)] * 3,
        "redis-2": [_run(1.2)] * 3,
    }
    summary = bs.summarize(raw)
    assert round(summary["added_p50_ms_1"], 6) == 0.5
    assert round(summary["added_p50_ms_2"], 6) == 0.2
    table = bs.render(summary)
    assert "| redis-1 |" in table
    assert "0.50 ms with 1 replica, 0.20 ms with 2" in table


def test_the_gateway_config_shares_state_only_for_redis_setups() -> None:
    local = tomllib.loads(bs.gateway_toml("http://127.0.0.1:1", 4000, "s", None))
    shared = tomllib.loads(bs.gateway_toml("http://127.0.0.1:1", 4000, "s", "p:"))
    assert "redis_url" not in local["server"]
    assert shared["server"]["redis_prefix"] == "p:"
    assert local["budgets"][0]["hard_limit"] is True  # every request takes the reservation path
    assert local["keys"][0]["rpm"]
    assert local["keys"][0]["tpm"]
