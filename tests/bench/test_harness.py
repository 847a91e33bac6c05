"""The benchmark harness works end to end (in --quick mode) — never a timing threshold.

The end-to-end test runs ``python -m bench all --quick`` in a subprocess with tiny counts
against the real simulator and gateway; LiteLLM takes part only when its peer venv
(bench/.venv-peers) already exists — a test never installs it. The other tests check the
pieces (loopback guard, percentiles, the docs rewrite, the chart) on made-up numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.procs import ServerSet, free_port  # noqa: E402

from bench import loadgen, peers, report  # noqa: E402


def test_loadgen_refuses_non_loopback_targets() -> None:
    loadgen.assert_loopback("http://127.0.0.1:1/v1")
    loadgen.assert_loopback("http://localhost:1/")
    loadgen.assert_loopback("http://[::1]:1/")
    for url in ("http://10.0.0.1/", "http://example.com/", "http://192.168.1.1:80/"):
        with pytest.raises(ValueError, match="non-loopback"):
            loadgen.assert_loopback(url)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert loadgen.percentile(values, 50) == 500.0
    assert loadgen.percentile(values, 99) == 990.0
    assert loadgen.percentile(values, 99.9) == 999.0
    assert loadgen.percentile([], 50) != loadgen.percentile([], 50)  # NaN


async def test_loadgen_counts_errors_and_respects_the_request_count() -> None:
    port = free_port()  # nothing listens: every request is a connection error
    target = loadgen.Target(f"http://127.0.0.1:{port}/x", b"{}")
    result = await loadgen.run_concurrency(target, 4, max_requests=12, max_seconds=5)
    assert result.sent == 12
    assert result.errors == 12
    assert result.as_dict()["rps"] == 0.0


def _fake_results() -> dict[str, Any]:
    def cell(rps: float, p50: float, p99: float) -> dict[str, Any]:
        return {
            "rps": rps,
            "p50": p50,
            "p99": p99,
            "p999": p99 * 1.2,
            "added_p50": p50 - 1,
            "added_p99": p99 - 2,
            "added_p999": p99,
            "errors": 0,
            "sent": 100,
        }

    summary = {}
    for kind in ("plain", "stream"):
        for level in (10, 50, 200):
            summary[f"{kind}-c{level}"] = {
                "direct": cell(9000, 1, 2),
                "bare": cell(4000, 2, 4),
                "greenlang": cell(3000, 3, 6) | {"rps_vs_litellm": 25.0, "rps_vs_bare": 0.75},
                "litellm": cell(120, 80, 200),
            }
        summary[f"{kind}-rps500"] = {"direct": cell(500, 1, 2), "greenlang": cell(500, 2, 5)}
    library = {
        "sequential": {
            "llm_router": {
                "added_p50_ms": 0.05,
                "added_p99_ms": 0.1,
                "added_cpu_us": 50,
                "calls_per_s": 3000,
                "raw_calls_per_s": 4000,
                "errors": 0,
                "added_p50_ms_vs_litellm": 0.0125,
                "added_cpu_us_vs_litellm": 0.0125,
            },
            "litellm_router": {
                "added_p50_ms": 4.0,
                "added_p99_ms": 5.0,
                "added_cpu_us": 4000,
                "calls_per_s": 220,
                "raw_calls_per_s": 4000,
                "errors": 0,
            },
        }
    }
    return {
        "meta": {"command": "python -m bench all", "machine": {"cores": "2"}},
        "library": {"summary": library, "calls_per_measurement": 10, "concurrency": 50, "repeats": 3},
        "gateway": {
            "summary": summary,
            "idle_rss_kib": {"greenlang": 40_000},
            "peak_rss_kib": {"greenlang": 50_000},
            "repeats": 3,
            "seconds_per_run": 2.5,
        },
    }


def test_targets_say_plainly_which_are_met() -> None:
    rows = report.targets(_fake_results())
    met = {r["target"]: r["met"] for r in rows}
    assert met["router overhead ≤ 1/50 of LiteLLM Router's (sequential, added p50)"] is True
    assert met["gateway ≥ 20× LiteLLM proxy's RPS (plain-c50)"] is True
    assert met["added p99 ≤ 5 ms at 500 RPS (plain)"] is True
    assert "yes" in report.terminal(_fake_results())


def test_docs_block_is_rewritten_between_markers_only(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        f"# Benchmarks\n\n## Router\nkeep me\n\n## Side by side\n{report.BEGIN}\nold\n{report.END}\n\ntail\n"
    )
    report.rewrite_docs(docs, "new block\n")
    text = docs.read_text()
    assert "keep me" in text
    assert "tail" in text
    assert "new block" in text
    assert "old" not in text
    fresh = tmp_path / "fresh.md"
    report.rewrite_docs(fresh, report.markdown(_fake_results(), "chart.svg"))
    assert report.BEGIN in fresh.read_text()
    assert "chart.svg" in fresh.read_text()


def test_chart_is_well_formed_svg() -> None:
    svg = report.svg_chart(_fake_results())
    assert svg is not None
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert (
        len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) == 16
    )  # 4 servers × 2 panels × p50/p99


def test_server_set_stops_its_servers_on_failure(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}/"
    started = []

    def run_and_fail() -> None:
        with ServerSet(tmp_path) as servers:
            started.append(servers.start("static", argv, url, url))
            assert started[0].rss_kib() > 0
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_and_fail()
    assert started[0].proc.poll() is not None


@pytest.mark.slow
def test_quick_run_end_to_end_produces_tables_json_docs_and_chart(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    argv = [
        sys.executable,
        "-m",
        "bench",
        "all",
        "--quick",
        "--peers",
        "existing",
        "--out",
        str(tmp_path / "out"),
        "--docs",
        str(docs),
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Gateway" in done.stdout
    assert "Library" in done.stdout
    raw = json.loads(next((tmp_path / "out").glob("bench-*-quick.json")).read_text())
    assert raw["gateway"]["summary"]["plain-c10"]["greenlang"]["rps"] > 0
    assert raw["library"]["summary"]["sequential"]["llm_router"]["calls_per_s"] > 0
    if peers.ensure_peers(install=False) is not None:
        assert raw["gateway"]["summary"]["plain-c10"]["litellm"]["rps"] > 0
    assert report.BEGIN in docs.read_text()
    assert (tmp_path / "benchmarks-latency-vs-load.svg").exists()


def test_profile_summary_shares_self_time_by_file_and_line(tmp_path: Path) -> None:
    from bench.profile_gateway import summarize

    raw = tmp_path / "p.raw"
    raw.write_text(
        "main (/x/src/greenlang_llm/a.py:1);hot (/x/src/greenlang_llm/b.py:7) 3\n"
        "main (/x/src/greenlang_llm/a.py:1) 1\n"
    )
    text = summarize(raw, 5)
    assert "4 samples" in text
    assert "75.0%  greenlang_llm/b.py" in text
    assert "greenlang_llm/b.py:7 hot" in text


def test_ab_gateway_runs_a_revision_against_the_work_tree_and_reports_both_sides() -> None:
    argv = [
        sys.executable, "-m", "bench.ab_gateway", "--a-rev", "HEAD", "--b-env", "LOG_LEVEL=ERROR",
        "--scenario", "plain-c10", "--repeats", "1", "--seconds", "0.3",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("plain-c10")]
    assert [line.split()[1] for line in lines] == ["A:", "B:"]
    for line in lines:
        assert float(line.split()[2].replace(",", "")) > 0  # RPS


def test_ab_gateway_refuses_a_malformed_env_pair() -> None:
    from bench import ab_gateway

    with pytest.raises(SystemExit, match="NAME=VALUE"):
        ab_gateway._env(["NOVALUE"])


def test_ab_router_runs_a_revision_against_the_work_tree_and_reports_both_sides() -> None:
    argv = [sys.executable, "-m", "bench.ab_router", "--a-rev", "HEAD", "--repeats", "1", "--n", "200"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line[:2] in ("A:", "B:")]
    assert [line[:2] for line in lines] == ["A:", "B:"]
    for line in lines:
        assert float(line.split()[3]) > 0  # added p50 in µs


def test_ab_router_refuses_zero_repeats() -> None:
    from bench import ab_router

    with pytest.raises(SystemExit, match="at least 1"):
        ab_router.main(["--repeats", "0"])
