"""bench/bench_streams.py renders its section and rewrites only that section of the docs — never a timing."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_streams  # noqa: E402

RESULT = {
    "ttfb": {
        "openai": {"added_p50_ms": 0.8, "direct_p50_ms": 0.4, "gateway_p50_ms": 1.2},
        "anthropic": {"added_p50_ms": 2.5, "direct_p50_ms": 0.4, "gateway_p50_ms": 2.9},
    },
    "throughput": {
        "openai, paced, c16": {"ratio": 0.97, "direct_tokens_s": 11000.0, "gateway_tokens_s": 10670.0},
        "openai, unpaced, c1": {"ratio": 0.15, "direct_tokens_s": 700000.0, "gateway_tokens_s": 105000.0},
    },
    "stall": {"gateway_ms": [1.0, 2.0, 3.0], "library_ms": [0.5]},
}


def test_markdown_marks_each_target_met_or_missed() -> None:
    text = bench_streams.markdown(RESULT, 5, 2.0, "python -m bench.bench_streams")
    assert text.startswith("## Streams\n")
    assert "| openai | 0.40 ms | 1.20 ms | +0.80 ms (yes) |" in text
    assert "+2.50 ms (**no**)" in text
    assert "| openai, paced, c16 | 11,000 | 10,670 | 97% (yes) |" in text
    assert "15% (**no**)" in text
    assert "- gateway: p50 +2.0 ms, max +3.0 ms over 3 stalls" in text


def test_rewrite_section_replaces_only_the_streams_section(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("## Gateway\nkeep me\n\n## Streams\nold\n\n## Scale-out\nkeep me too\n")
    bench_streams.rewrite_section(docs, "## Streams\nnew\n")
    assert docs.read_text() == "## Gateway\nkeep me\n\n## Streams\nnew\n\n## Scale-out\nkeep me too\n"
    fresh = tmp_path / "other.md"
    fresh.write_text("## Router\nx\n")
    bench_streams.rewrite_section(fresh, "## Streams\nnew\n")
    assert fresh.read_text() == "## Router\nx\n\n## Streams\nnew\n"


def test_configs_name_every_model_the_bench_streams() -> None:
    sim = bench_streams.sim_config()
    gateway = bench_streams.gateway_config("http://127.0.0.1:1", 2, Path("/tmp/x.db"))
    for model in [*bench_streams.LONG.values(), *bench_streams.PACED.values()]:
        assert f'"{model}"' in sim
        assert f'model_id = "{model}"' in gateway
    assert f"idle_timeout = {bench_streams.IDLE}" in gateway
